"""Issue 9 part 2: the filtered CPUID table (pure) and what a guest sees with
--cpuid=filtered (default) and --cpuid=host, on real KVM."""

from __future__ import annotations

import pytest
from conftest import guest, require_kvm, run_tender

from tender.kvm import cpuid

KVM_SIGNATURE = (0x4B4D564B, 0x564B4D56, 0x4D)   # "KVMKVMKVM\0\0\0"
# (leaf, register index in eax..edx, bit): kept exactly as the host has them
KEPT = {
    "SSE": (1, 3, 25), "SSE2": (1, 3, 26), "SSE3": (1, 2, 0), "SSE4.2": (1, 2, 20),
    "XSAVE": (1, 2, 26), "RDRAND": (1, 2, 30), "RDSEED": (7, 1, 18),
    "RDTSCP": (0x80000001, 3, 27), "invariant TSC": (0x80000007, 3, 8),
}
REMOVED = {
    "VMX": (1, 2, 5), "SMX": (1, 2, 6), "hypervisor": (1, 2, 31), "SGX": (7, 1, 2),
    "SVM": (0x80000001, 2, 2), "SKINIT": (0x80000001, 2, 12),
}


def seen(mode: str) -> dict[int, tuple[int, int, int, int]]:
    r = run_tender("--mem=64", f"--cpuid={mode}", guest("cpu"), "cpuid")
    assert r.status == 0, r.output
    leaves = {}
    for line in r.out.splitlines():
        if line.startswith("cpuid "):
            leaf, *regs = line.split()[1:]
            leaves[int(leaf.split(".")[0], 16)] = tuple(int(x, 16) for x in regs)
    return leaves      # type: ignore[return-value]


def test_filter_is_pure_and_exact() -> None:
    all_ones = 0xFFFFFFFF
    host = (cpuid.Entry(0, 0, 0, 0x1C, 1, 2, 3),
            cpuid.Entry(1, 0, 0, 5, 6, all_ones, all_ones),
            cpuid.Entry(7, 0, 1, 1, all_ones, all_ones, all_ones),
            cpuid.Entry(7, 1, 1, 0, all_ones, all_ones, 0),
            cpuid.Entry(0x12, 0, 1, 1, 1, 1, 1),
            cpuid.Entry(0x40000000, 0, 0, 0x40000001, *KVM_SIGNATURE),
            cpuid.Entry(0x40000001, 0, 0, 0x1007EFB, 0, 0, 0),
            cpuid.Entry(0x80000001, 0, 0, 0, 0, all_ones, all_ones),
            cpuid.Entry(0x80000007, 0, 0, 0, 0, 0, 0x100),
            cpuid.Entry(0x8000000A, 0, 0, 1, 2, 3, 4))
    buf = cpuid.pack(host)
    out = cpuid.parse(cpuid.filter_table(buf))
    assert [e.function for e in out] == [0, 1, 7, 7, 0x80000001, 0x80000007]
    by = {(e.function, e.index): e for e in out}
    assert by[1, 0].ecx == all_ones & ~(1 << 5 | 1 << 6 | 1 << 31) and by[1, 0].edx == all_ones
    assert by[7, 0].ebx == all_ones & ~(1 << 2) and by[7, 0].ecx == all_ones & ~(1 << 30)
    assert by[7, 1] == host[3]                       # only subleaf 0 carries SGX
    assert by[0x80000001, 0].ecx == all_ones & ~(1 << 2 | 1 << 12)
    assert by[0x80000007, 0] == host[8] and by[0, 0] == host[0]
    assert cpuid.parse(buf) == host                  # input untouched
    with pytest.raises(ValueError):
        cpuid.parse(buf[:-1])


def test_guest_sees_filtered_and_host_tables() -> None:
    require_kvm()
    filt, host = seen("filtered"), seen("host")
    from tender.kvm import Kvm

    kvm = Kvm()
    try:
        table = {e.function: e for e in cpuid.parse(kvm.supported_cpuid()) if e.index == 0}
    finally:
        kvm.close()
    # hypervisor leaves: KVM's signature with --cpuid=host, nothing filtered
    if 0x40000000 in table:
        assert host[0x40000000][1:] == KVM_SIGNATURE
    assert filt[0x40000000] == (0, 0, 0, 0) and filt[0x40000001] == (0, 0, 0, 0)
    for name, (leaf, reg, bit) in REMOVED.items():
        assert not filt[leaf][reg] >> bit & 1, name
    if table[1].ecx >> 31 & 1:
        assert host[1][2] >> 31 & 1
    for name, (leaf, reg, bit) in KEPT.items():
        assert filt[leaf][reg] >> bit & 1 == host[leaf][reg] >> bit & 1, name
    assert filt[0] == host[0] and filt[0x80000000] == host[0x80000000]
