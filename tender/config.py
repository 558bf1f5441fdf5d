"""Pure: the frozen description of one guest run (what `cli` produces and
what library users build directly)."""

from __future__ import annotations

import enum

from tender.abi import DEFAULT_MEM
from tender.errors import UsageError
from tender.record import record

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from typing import Literal

    from tender.devices.disk import BlockDisk
    from tender.devices.pipe import FramePipe


class HandlerMode(enum.Enum):
    NATIVE = "native"   # C twins for hot hypercalls unless something observes them
    PYTHON = "python"   # the reference handlers for everything


class CpuidMode(enum.Enum):
    FILTERED = "filtered"   # what a unikernel needs (tender/kvm/cpuid.py)
    HOST = "host"           # KVM's supported table unchanged, as solo5-hvt


@record(frozen=True)
class BlockSpec:
    """A block device: an image file (`path`) or a Python object (`disk`,
    a BlockDisk such as MemoryDisk), never both."""

    name: str
    path: str | None = None
    block_size: int = 512       # for `path`; a `disk` has its own
    disk: BlockDisk | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.disk is None):
            raise UsageError(f"block device '{self.name}': give a path or a disk, not "
                             f"{'both' if self.path is not None else 'neither'}")


@record(frozen=True)
class NetSpec:
    """A network device: a tap (`iface`, or "@N" for an open tap or
    SOCK_SEQPACKET fd) or a FramePipe (`pipe`), never both."""

    name: str
    iface: str | None = None
    mac: bytes | None = None
    pipe: FramePipe | None = None

    def __post_init__(self) -> None:
        if (self.iface is None) == (self.pipe is None):
            raise UsageError(f"net device '{self.name}': give an iface or a pipe, not "
                             f"{'both' if self.iface is not None else 'neither'}")


@record(frozen=True)
class VmConfig:
    """Everything one guest run is given (the command line, as data)."""

    kernel: str
    args: tuple[bytes, ...] = ()
    mem: int = DEFAULT_MEM      # requested bytes, before the spec 3.1 rounding
    blocks: tuple[BlockSpec, ...] = ()
    nets: tuple[NetSpec, ...] = ()
    # Device names in the order they are opened (the command line's, as
    # solo5-hvt); names not listed follow, blocks before nets.
    attach_order: tuple[str, ...] = ()
    handlers: HandlerMode = HandlerMode.NATIVE
    dumpcore: str | None = None
    gdb_port: int | None = None
    trace: str | None = None
    # Offer HVT_FEATURE_RING_IO (native handlers only); "auto": only where the
    # host is not detected to make the ring cost more than it saves (host.ring_pays).
    net_ring: bool | Literal["auto"] = True
    script: str | None = None   # --script=FILE.py: a file defining `intercept = {...}`
    wx: bool = True             # W^X guest paging, read-only low memory (issue 9)
    cpuid: CpuidMode = CpuidMode.FILTERED
    msr_filter: bool = True     # deny guest MSRs but the allowlist (tender/kvm/msr.py)
    # Serve Prometheus /metrics on 127.0.0.1:PORT during run() (0: any free port).
    metrics_port: int | None = None
    # Device specs of modules other than block and net (each module's
    # `devices` picks its own; each spec has a `name` for attach_order).
    devices: tuple[object, ...] = ()
