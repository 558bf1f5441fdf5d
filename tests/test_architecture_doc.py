"""docs/ARCHITECTURE.md describes the layout as built (issue 11): every
file it names exists, every unit of tender/ has its row in the layer table,
and every file of csrc/, of the two backends and of the two host OS
packages is placed. No KVM needed."""

from __future__ import annotations

import re

from conftest import ROOT
from test_layers import LAYERS

DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
# Paths the page names: `tender/x.py`, `csrc/y.h`, `tests/z.py`, `docs/...`.
NAMED = re.compile(r"`((?:tender|csrc|tests|guests|docs|bench)/[\w./-]+)`")


def layer_table() -> set[str]:
    """The units listed in the "Layers" table's second column."""
    rows = re.findall(r"^\| [\d-]+ \| (.*?) \|", DOC, re.MULTILINE)
    return {u.rstrip("/") for row in rows for u in re.findall(r"`([\w/]+)`", row)}


def test_every_named_file_exists() -> None:
    missing = [p for p in NAMED.findall(DOC)      # a module may be named without .py
               if not (ROOT / p.rstrip("/")).exists() and not (ROOT / f"{p}.py").exists()]
    assert missing == []


def test_every_unit_is_in_the_layer_table() -> None:
    table = layer_table()
    assert {u for u in LAYERS if u != "__init__"} - table == set()
    assert "tender/__init__" in table


def test_every_c_file_backend_and_host_module_is_placed() -> None:
    files = [*sorted((ROOT / "csrc").iterdir()),
             *sorted((ROOT / "tender" / "kvm").glob("*.py")),
             *sorted((ROOT / "tender" / "bhyve").glob("*.py")),
             *sorted((ROOT / "tender" / "linux").glob("*.py")),       # the host OS halves
             *sorted((ROOT / "tender" / "freebsd").glob("*.py"))]
    unplaced = []
    for f in files:
        if f.name == "__init__.py" or f.suffix not in (".c", ".h", ".cdef", ".py"):
            continue
        rel = f.relative_to(ROOT).as_posix()
        short = f.relative_to(f.parent.parent).as_posix()     # kvm/vcpu.py, csrc/ring.c
        if not any(n in DOC for n in (f"`{rel}`", f"`{short}`", f"`{f.name}`")):
            unplaced.append(rel)
    assert unplaced == []
