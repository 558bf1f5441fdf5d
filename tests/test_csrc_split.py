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
