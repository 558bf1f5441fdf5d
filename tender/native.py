"""What the C side (csrc/) needs to serve hypercalls natively: the
`struct vl_vcpu` view of guest memory and devices, and which hypercalls
have a C twin. Shared by the vCPU loop and the net ring thread."""

from __future__ import annotations

from tender import abi, modules
from tender import manifest as mft
from tender.hypercalls import Context
from tender.memory import GuestMemory

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from typing import Any

# Hypercalls that have a C twin in csrc/vcpu_loop.c (the module table says).
NATIVE_CAPABLE = modules.native_capable()


def native_view(mem: GuestMemory, manifest: mft.Manifest, ctx: Context,
                keep: list[Any], stats: Any = None) -> Any:
    """A `struct vl_vcpu *` with what the C code needs to check guest
    addresses and reach devices. The backend fills in its vCPU part.
    `stats`: the run's live `struct vl_stats *`, whose vcpu.hypercalls is
    then the one count of natively served hypercalls (view.counts)."""
    from tender._vcpu import ffi, lib

    v = ffi.new("struct vl_vcpu *")
    if stats is None:
        counts = ffi.new("uint64_t[]", lib.VL_NR_MAX)
        keep.append(counts)
        v.counts = counts
    else:
        v.stats = stats
        v.counts = stats.vcpu.hypercalls
    v.mem = ffi.cast("uint8_t *", mem.host_address)
    v.mem_size = mem.size
    v.write_floor = mem.write_floor
    # Any number of read-only ranges (solo5-hvt has no limit either). The
    # array must outlive the vCPU loop and the ring thread's copy of the view:
    # `keep` is the run's.
    ro = ffi.new("uint64_t[]", [x for r in mem.read_only for x in r] or [0])
    keep.append(ro)
    v.ro = ro
    v.n_ro = len(mem.read_only)
    v.console_fd = ctx.console_fd
    v.n_devices = len(manifest.entries)
    for h, b in ctx.blocks.items():
        v.devices[h] = {"kind": lib.VL_DEV_BLOCK, "fd": b.fd, "capacity": b.capacity,
                        "block_size": b.block_size}
    for h, n in ctx.nets.items():
        v.devices[h] = {"kind": lib.VL_DEV_NET, "fd": n.fd}
    return v


def native_set(ctx: Context, nrs: set[int] | frozenset[int]) -> set[int]:
    """Of `nrs`, the hypercalls C serves: those with a twin whose devices
    all have an fd (a plain BlockDisk object needs the Python handlers)."""
    served = {nr for nr in nrs if nr in NATIVE_CAPABLE}
    if any(dev.fd < 0 for dev in ctx.blocks.values()):
        served -= {abi.Hypercall.BLOCK_WRITE, abi.Hypercall.BLOCK_READ}
    return served
