"""One ABI definition (issue 11 part 3), outside the tender too: the C that
issues or serves hypercalls in guests/ and bench/ takes the numbers and
layouts from csrc/hvt_abi.h and keeps no private copy. No KVM needed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from conftest import ROOT

CSRC = ROOT / "csrc"
HEADER = (CSRC / "hvt_abi.h").read_text()
# The header's names: macros and the enumerators (HC_PUTS = 2, RES_OK = 0).
ABI_NAMES = set(re.findall(r"#\s*define\s+(\w+)", HEADER)) | set(
    re.findall(r"\b([A-Z][A-Z0-9_]+)\s*=\s*\d", HEADER))
# A hypercall is an OUT to a port (guests) or a KVM_EXIT_IO served (bench/floor.c).
USES_ABI = re.compile(r"\boutl\b|KVM_EXIT_IO\b|HC_PIO_BASE")
DEFINE = re.compile(r"^\s*#\s*define\s+(\w+)(?:\s+(.*))?$", re.MULTILINE)


def c_sources() -> list[Path]:
    return sorted(p for d in ("guests", "bench") for p in (ROOT / d).rglob("*")
                  if p.suffix in (".c", ".h", ".S") and "build" not in p.parts)


# The include path guests/Makefile gives the compiler (and csrc/ for bench).
INCLUDE_DIRS = (ROOT / "guests" / "rt", CSRC)


def includes_header(path: Path, seen: frozenset[Path] = frozenset()) -> bool:
    """hvt_abi.h reached through the file's quoted includes."""
    for name in re.findall(r'#\s*include\s+"([^"]+)"', path.read_text()):
        if name == "hvt_abi.h":
            return True
        for inc in (path.parent / name, *(d / name for d in INCLUDE_DIRS)):
            if inc.exists() and inc not in seen and includes_header(inc, seen | {path}):
                return True
    return False


def test_the_sources_are_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in c_sources()}
    assert {"guests/rt/guest.h", "guests/rt/net.c", "bench/floor.c"} <= names


def test_every_hypercall_user_includes_the_header() -> None:
    users = [p for p in c_sources() if USES_ABI.search(p.read_text())]
    assert any(p.name == "floor.c" for p in users)
    assert [p.relative_to(ROOT).as_posix() for p in users if not includes_header(p)] == []


def test_no_private_copy_of_the_abi() -> None:
    """No file redefines a header name, and none spells the hypercall port
    base as a number of its own."""
    found = []
    for p in c_sources():
        for name, value in DEFINE.findall(p.read_text()):
            if name in ABI_NAMES or re.search(r"\b0x0*500\b|\b1280\b", value):
                found.append(f"{p.relative_to(ROOT)}: #define {name} {value}")
    assert found == []


def test_the_checker_sees_a_copy() -> None:
    copy = "#define HC_HALT 8\n#define PORT0 0x500\n#define OTHER 3\n"
    assert [n for n, v in DEFINE.findall(copy)
            if n in ABI_NAMES or re.search(r"\b0x0*500\b", v)] == ["HC_HALT", "PORT0"]


def test_the_boot_floor_builds_from_the_header(tmp_path: Path) -> None:
    """bench/floor.c (bench/boot's C baseline) is not run by CI; its build is."""
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{CSRC}", "-o",
                    str(tmp_path / "floor"), str(ROOT / "bench" / "floor.c")], check=True)
