"""Pure: the frozen description of one guest run (what `cli` produces and
what library users build directly)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from tender.abi import DEFAULT_MEM


class HandlerMode(enum.Enum):
    NATIVE = "native"   # C twins for hot hypercalls unless something observes them
    PYTHON = "python"   # the reference handlers for everything


@dataclass(frozen=True)
class BlockSpec:
    name: str
    path: str
    block_size: int = 512


@dataclass(frozen=True)
class NetSpec:
    name: str
    iface: str                  # interface name, or "@N" for an open tap fd
    mac: bytes | None = None


@dataclass(frozen=True)
class VmConfig:
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
    net_ring: bool = True       # offer HVT_FEATURE_RING_IO (native handlers only)
