"""KVM facts come from <linux/kvm.h>, not from our hands (no KVM needed).

gcc compiles a probe of the kernel header that prints every constant that
csrc/kvm.cdef asks cffi for and the size and field offsets of every struct
it declares; the built module (tender._vcpu) and tender/kvm/ioctls.py must
give the same numbers. The pure byte layouts that parse without the module
(cpuid.py, binstats.py) and the exit names are held to the header too, and
the tree is scanned for what the cdef replaced: ctypes KVM structs and
hand-written KVM ioctl numbers."""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from tender._vcpu import ffi, lib
from test_abi_header import py_offsets

from tender.kvm import binstats, cpuid, debug
from tender.kvm import ioctls as k
from tender.kvm.exit_names import EXIT_NAMES

CDEF = (ROOT / "csrc" / "kvm.cdef").read_text()
CONSTANTS = tuple(re.findall(r"^#define (\w+) \.\.\.$", CDEF, re.MULTILINE))
STRUCTS = tuple(re.findall(r"^struct (kvm_\w+) \{$", CDEF, re.MULTILINE))
# Not a macro of the header: the offset cffi cannot take from the anonymous union.
EXPRESSIONS = {"VK_RUN_DEBUG_ARCH": "offsetof(struct kvm_run, debug.arch)"}
# Our own choices in ioctls.py, not KVM's numbers.
OURS = {"CPUID_MAX_ENTRIES"}
TENDER = ROOT / "tender"


def fields(cname: str) -> list[tuple[str, Any]]:
    return list(ffi.typeof(f"struct {cname}").fields)


@pytest.fixture(scope="module")
def header(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """{name: value} as gcc sees <linux/kvm.h>."""
    out: Path = tmp_path_factory.mktemp("kvmh")
    items = [(name, EXPRESSIONS.get(name, name)) for name in CONSTANTS]
    for cname in STRUCTS:
        items.append((f"sizeof {cname}", f"sizeof(struct {cname})"))
        for fname, f in fields(cname):
            items.append((f"{cname}.{fname}", f"offsetof(struct {cname}, {fname})"))
            if f.type.kind != "array" or f.type.length is not None:
                items.append((f"sizeof {cname}.{fname}",
                              f"sizeof(((struct {cname} *)0)->{fname})"))
    body = [f'printf("\\"{key}\\": %llu, ", (unsigned long long)({expr}));'
            for key, expr in items]
    for name in EXIT_NAMES:
        macro = f"KVM_EXIT_{name.upper()}"
        body += [f"#ifdef {macro}", f'printf("\\"{macro}\\": %llu, ", '
                 f"(unsigned long long)({macro}));", "#endif"]
    src = out / "probe.c"
    src.write_text("\n".join(["#include <stdio.h>", "#include <stddef.h>",
                              "#include <linux/kvm.h>", "int main(void) {", 'printf("{");',
                              *body, 'printf("\\"end\\": 0}\\n");', "return 0; }"]))
    subprocess.run(["gcc", "-std=gnu11", "-Wall", "-Werror", "-o", str(out / "probe"), str(src)],
                   check=True)
    got: dict[str, int] = json.loads(subprocess.run([str(out / "probe")], check=True,
                                                    capture_output=True, text=True).stdout)
    return got


def test_the_cdef_asks_for_what_the_kvm_code_uses() -> None:
    """The lists the probe checks are not empty by accident."""
    assert {"KVM_RUN", "KVM_GET_REGS", "KVM_X86_SET_MSR_FILTER", "KVM_CAP_IOEVENTFD",
            "KVM_EXIT_X86_WRMSR"} <= set(CONSTANTS)
    assert {"kvm_regs", "kvm_sregs", "kvm_segment", "kvm_dtable", "kvm_fpu",
            "kvm_userspace_memory_region", "kvm_cpuid2", "kvm_cpuid_entry2", "kvm_msr_filter",
            "kvm_msr_filter_range", "kvm_guest_debug", "kvm_debugregs", "kvm_run",
            "kvm_ioeventfd", "kvm_enable_cap"} <= set(STRUCTS)


@pytest.mark.parametrize("name", CONSTANTS)
def test_constant_is_the_headers(header: dict[str, int], name: str) -> None:
    assert getattr(lib, name) == header[name]


@pytest.mark.parametrize("cname", STRUCTS)
def test_struct_layout_is_the_headers(header: dict[str, int], cname: str) -> None:
    assert ffi.sizeof(f"struct {cname}") == header[f"sizeof {cname}"]
    for fname, f in fields(cname):
        assert f.offset == header[f"{cname}.{fname}"], fname
        if f.type.kind != "array" or f.type.length is not None:
            assert ffi.sizeof(f.type) == header[f"sizeof {cname}.{fname}"], fname


def test_ioctls_module_numbers_are_the_headers(header: dict[str, int]) -> None:
    """Every number tender/kvm/ioctls.py exports is the header's KVM_<name>."""
    names = [n for n, v in vars(k).items()
             if n.isupper() and isinstance(v, int) and not isinstance(v, bool)]  # not TYPE_CHECKING
    assert len(names) > 40
    for name in names:
        if name in OURS or name.startswith("CPUID_") or name == "RUN_DEBUG_EXIT_OFFSET":
            continue                 # sizes and an offset: checked below
        macro = name if name.startswith("KVM_") else f"KVM_{name}"
        assert getattr(k, name) == header[macro], name
    assert k.CPUID_HEADER_SIZE == header["kvm_cpuid2.entries"]
    assert k.CPUID_ENTRY_SIZE == header["sizeof kvm_cpuid_entry2"]
    assert k.RUN_DEBUG_EXIT_OFFSET == debug.RUN_EXIT_UNION == header["VK_RUN_DEBUG_ARCH"]


def test_exit_names_are_the_headers(header: dict[str, int]) -> None:
    defined = {name: header[f"KVM_EXIT_{name.upper()}"] for name in EXIT_NAMES
               if f"KVM_EXIT_{name.upper()}" in header}
    assert len(defined) >= 30            # a header older than ours would still have these
    assert all(EXIT_NAMES[v] == name for name, v in defined.items()), defined


@pytest.mark.parametrize(("layout", "cname", "names", "size"), [
    (cpuid.ENTRY, "kvm_cpuid_entry2",
     ("function", "index", "flags", "eax", "ebx", "ecx", "edx"), None),
    (cpuid.HEADER, "kvm_cpuid2", ("nent",), "kvm_cpuid2.entries"),
    (binstats._HEADER, "kvm_stats_header",
     ("flags", "name_size", "num_desc", "id_offset", "desc_offset", "data_offset"), None),
    (binstats._DESC, "kvm_stats_desc", ("flags", "exponent", "size", "offset", "bucket_size"),
     "kvm_stats_desc.name"),
    (debug.DEBUG_EXIT, "kvm_debug_exit_arch", ("exception", "pad", "pc", "dr6", "dr7"), None),
])
def test_pure_byte_layouts_are_the_headers(header: dict[str, int], layout: Any, cname: str,
                                           names: tuple[str, ...], size: str | None) -> None:
    """cpuid.py, binstats.py and debug.py parse bytes with `struct` (pure,
    testable without KVM); their formats must be the header's layouts."""
    assert layout.size == header[size or f"sizeof {cname}"]
    assert py_offsets(layout)[: len(names)] == [header[f"{cname}.{n}"] for n in names]


# --- what the cdef replaced must not come back ---------------------------------
def kvm_ioctl_literals(tree: ast.AST) -> list[int]:
    """Integer literals shaped like a KVM ioctl request: _IOC(dir, KVMIO
    0xAE, nr, size)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and type(node.value) is int:
            v = node.value
            if (v & 0xFF00) == 0xAE00 and (v <= 0xFFFF or (
                    v < 1 << 32 and v >> 30 != 0 and (v >> 16) & 0x3FFF != 0)):
                out.append(v)
    return out


def ctypes_structs(tree: ast.AST) -> list[str]:
    return [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
            and any("Structure" in ast.unparse(b) or "Union" in ast.unparse(b)
                    for b in node.bases)]


def imported_modules(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_scanner_finds_what_it_looks_for() -> None:
    tree = ast.parse("import ctypes\nRUN = 0xAE80\nGET_REGS = 0x8090AE81\nPORT = 0x600\n"
                     "class Regs(ctypes.Structure):\n    _fields_ = []\n")
    assert kvm_ioctl_literals(tree) == [0xAE80, 0x8090AE81]
    assert ctypes_structs(tree) == ["Regs"] and "ctypes" in imported_modules(tree)


def test_no_hand_written_kvm_ioctl_or_ctypes_struct_in_tender() -> None:
    """ctypes structs remain only in tender/bhyve (FreeBSD vmm(4) layouts,
    held to BHYVE_SPEC by test_bhyve); nothing under tender/kvm imports ctypes."""
    numbers, structs = [], []
    for path in sorted(TENDER.rglob("*.py")):
        rel = path.relative_to(TENDER)
        tree = ast.parse(path.read_text(), str(path))
        numbers += [f"{rel}: {v:#x}" for v in kvm_ioctl_literals(tree)]
        if rel.parts[0] != "bhyve":
            structs += [f"{rel}: {name}" for name in ctypes_structs(tree)]
        if rel.parts[0] == "kvm":
            assert "ctypes" not in imported_modules(tree), rel
    assert numbers == [] and structs == []
