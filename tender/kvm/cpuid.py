"""Pure: the CPUID table a unikernel gets (issue 9, Solo5 #610).

Input and output are `struct kvm_cpuid2` buffers (KVM_GET_SUPPORTED_CPUID ->
KVM_SET_CPUID2). Removed: virtualisation extensions the guest cannot use
(VMX, SVM, SMX/SKINIT, SGX), the hypervisor bit and every hypervisor leaf
(0x40000000-0x4fffffff: KVM signature, kvmclock and the other paravirtual
feature bits). Everything else, among it SSE*/AVX/XSAVE, RDRAND, RDSEED,
RDTSCP and the invariant TSC, passes as the host has it."""

from __future__ import annotations

import struct

from tender.record import record, replace

HEADER = struct.Struct("<II")           # nent, padding
ENTRY = struct.Struct("<7I12x")         # function index flags eax ebx ecx edx, padding[3]

HYPERVISOR_LEAVES = range(0x40000000, 0x50000000)
DROPPED_LEAVES = frozenset({
    0x12,           # SGX enumeration
    0x8000000A,     # SVM revision and features
})


@record(frozen=True)
class Clear:
    """Bits cleared in one register of one leaf (any subleaf unless given)."""

    function: int
    register: str       # "eax" | "ebx" | "ecx" | "edx"
    bits: int
    index: int | None = None


CLEARED = (
    Clear(0x1, "ecx", 1 << 5),              # VMX
    Clear(0x1, "ecx", 1 << 6),              # SMX
    Clear(0x1, "ecx", 1 << 31),             # hypervisor present
    Clear(0x7, "ebx", 1 << 2, index=0),     # SGX
    Clear(0x7, "ecx", 1 << 30, index=0),    # SGX launch control
    Clear(0x80000001, "ecx", 1 << 2),       # SVM
    Clear(0x80000001, "ecx", 1 << 12),      # SKINIT
)


@record(frozen=True)
class Entry:
    function: int
    index: int
    flags: int
    eax: int
    ebx: int
    ecx: int
    edx: int


def parse(buf: bytes | bytearray) -> tuple[Entry, ...]:
    nent, _ = HEADER.unpack_from(buf, 0)
    if HEADER.size + nent * ENTRY.size > len(buf):
        raise ValueError(f"kvm_cpuid2: {nent} entries do not fit in {len(buf)} bytes")
    return tuple(Entry(*ENTRY.unpack_from(buf, HEADER.size + i * ENTRY.size))
                 for i in range(nent))


def pack(entries: tuple[Entry, ...]) -> bytearray:
    out = bytearray(HEADER.pack(len(entries), 0))
    for e in entries:
        out += ENTRY.pack(e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx)
    return out


def filter_entries(entries: tuple[Entry, ...]) -> tuple[Entry, ...]:
    kept = []
    for e in entries:
        if e.function in HYPERVISOR_LEAVES or e.function in DROPPED_LEAVES:
            continue
        for c in CLEARED:
            if c.function == e.function and c.index in (None, e.index):
                e = replace(e, **{c.register: getattr(e, c.register) & ~c.bits})
        kept.append(e)
    return tuple(kept)


def filter_table(buf: bytes | bytearray) -> bytearray:
    """A kvm_cpuid2 buffer -> the filtered kvm_cpuid2 buffer."""
    return pack(filter_entries(parse(buf)))


__all__ = ["CLEARED", "DROPPED_LEAVES", "HYPERVISOR_LEAVES", "Entry", "filter_entries",
           "filter_table", "pack", "parse"]
