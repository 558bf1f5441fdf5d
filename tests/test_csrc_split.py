"""The C side (no KVM needed): the hypercall twins in csrc/hypercalls.c name
no hypervisor, so any backend's run loop can call them; and no C source keeps
a private copy of the ABI that csrc/hvt_abi.h defines."""

from __future__ import annotations

import re

from conftest import ROOT

CSRC = ROOT / "csrc"
TWINS = ("hypercalls.c", "hypercalls.h")
# The C files that serve hypercalls or ring entries and so use the ABI.
ABI_USERS = ("vcpu_loop.c", "hypercalls.c", "ring.c")
# Shapes of the private copies the header replaced: PIO_BASE, NR_*, R_*, struct a_*.
PRIVATE_COPY = re.compile(r"#\s*define\s+(PIO_BASE|NR_\w+|R_\w+)\b|\bstruct\s+a_\w+")


def header_macros() -> set[str]:
    return set(re.findall(r"#\s*define\s+(\w+)", (CSRC / "hvt_abi.h").read_text()))


def test_the_twins_name_no_hypervisor() -> None:
    for name in TWINS:
        text = (CSRC / name).read_text()
        assert "linux/kvm.h" not in text, name
        assert not re.search(r"kvm", text, re.IGNORECASE), name


def test_the_kvm_loop_serves_hypercalls_through_the_twins() -> None:
    loop = (CSRC / "vcpu_loop.c").read_text()
    assert "vl_serve(" in loop
    assert not re.search(r"static int \w+\(struct vl_vcpu \*v, uint64_t gpa", loop)


def test_abi_users_include_the_header_and_keep_no_copy() -> None:
    macros = header_macros()
    for name in ABI_USERS:
        text = (CSRC / name).read_text()
        assert '#include "hvt_abi.h"' in text, name
        assert PRIVATE_COPY.search(text) is None, name
        redefined = set(re.findall(r"#\s*define\s+(\w+)", text)) & macros
        assert not redefined, (name, redefined)


def test_the_build_compiles_both_halves() -> None:
    build = (ROOT / "tender" / "_build.py").read_text()
    assert '"csrc/hypercalls.c"' in build and '"csrc/vcpu_loop.c"' in build


# Backend-neutral C: the twins, the ring thread and the interface they share.
# The KVM loop's part of the interface is csrc/vl_kvm.h, which they never see.
NEUTRAL = ("hypercalls.c", "hypercalls.h", "ring.c", "vcpu_loop.h", "vl_stats.h")


def test_backend_neutral_c_names_nothing_of_kvm() -> None:
    for name in NEUTRAL:
        text = (CSRC / name).read_text()
        assert not re.search(r"kvm|immediate_exit|vcpufd", text, re.IGNORECASE), name


def test_the_kvm_part_of_the_interface_is_the_kvm_loops() -> None:
    users = [p.name for p in sorted(CSRC.glob("*.[ch]")) if '#include "vl_kvm.h"' in p.read_text()]
    assert users == ["vcpu_loop.c"]
    assert "void vl_backend_stop(struct vl_backend *b)" in (CSRC / "vcpu_loop.c").read_text()


def test_native_hypercalls_are_counted_once() -> None:
    """v->counts is the one counter (the stats block's vcpu.hypercalls when
    there is one); nothing bumps the stats' copy beside it."""
    loop = (CSRC / "vcpu_loop.c").read_text()
    assert loop.count("v->counts[nr]++") == 1
    assert not re.search(r"VL_TALLY\(v,\s*hypercalls", loop)


def test_the_native_view_counts_into_the_stats_block() -> None:
    """native_view(stats=...) makes view.counts the stats block's
    vcpu.hypercalls (one array, two views); without one, a private array."""
    from tender._vcpu import ffi

    from tender.hypercalls import Context
    from tender.manifest import Manifest
    from tender.memory import GuestMemory
    from tender.native import native_view

    mem = GuestMemory(1 << 20, 1 << 20)
    try:
        keep: list[object] = []
        ctx = Context(mem=mem, console_fd=1)
        stats = ffi.new("struct vl_stats *")
        v = native_view(mem, Manifest(()), ctx, keep, stats)
        v.counts[3] += 2
        assert stats.vcpu.hypercalls[3] == 2 and v.stats == stats
        alone = native_view(mem, Manifest(()), ctx, keep)
        alone.counts[3] += 1
        assert alone.counts[3] == 1 and alone.stats == ffi.NULL
        assert stats.vcpu.hypercalls[3] == 2
    finally:
        mem.close()


def test_only_the_kvm_half_of_csrc_names_kvm() -> None:
    named = {p.name for p in CSRC.iterdir() if p.is_file()
             and re.search(r"kvm", p.read_text(), re.IGNORECASE)}
    assert named == {"vcpu_loop.c", "vl_kvm.h", "kvm.cdef"}
