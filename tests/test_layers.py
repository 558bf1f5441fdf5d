"""The import graph (no KVM needed): arrows point down the layers, and KVM
is named only by the KVM backend and the few places that select or wrap it.

Read from the source with `ast`; imports under `if TYPE_CHECKING:` are type
annotations, not arrows, and are skipped."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "tender"

# Lower number = lower layer. A unit is a top-level module or a subpackage.
LAYERS: dict[str, int] = {
    # 0: leaves
    "abi": 0, "errors": 0, "_vcpu": 0, "_build": 0, "elfwire": 0, "record": 0, "_recordimpl": 0,
    # 1: pure data
    "config": 1, "elf": 1, "layout": 1, "exits": 1, "usercode": 1, "debugview": 1,
    # 2: pure decoding, guest memory, host devices, the backend protocol
    "manifest": 2, "memory": 2, "devices": 2, "backend": 2, "wx": 2, "freebsd": 2,
    # 3: hypercall semantics; the backends (which know nothing of them)
    "hypercalls": 3, "kvm": 3, "bhyve": 3,
    # 4: what is built on those
    "modules": 4, "session": 4, "intercept": 4, "linux": 4, "stats": 4,
    # 5: run-assembly parts, host selection, the argv grammar, debug tools, install
    "install": 5, "native": 5, "runloop": 5, "host": 5, "sandbox": 5, "script": 5,
    "argv": 5, "debug": 5, "metrics": 5,
    # 6: interceptors loaded only when a run has them (the boot path's view)
    "intercepting": 6,
    # 7: the run assembly
    "vm": 7,
    # 8-10: entry points and tools
    "cli": 8, "_launch": 8, "stress": 8, "conformance": 8, "__init__": 8,
    "fuzz": 9, "pytest_plugin": 9, "audit": 10,
}

# Who may import tender.kvm: the backend selector and the Linux host (its
# seccomp allow-list names the vCPU ioctls). The debug tools and the run
# statistics reach KVM only through the backend's DebugView and StatsView.
KVM_IMPORTERS = {"host", "linux.sandbox"}
# Any spelling: KVM_RUN, kvm_run, KvmError, but also a bare `kvm` or `KVM`.
KVM_NAME = re.compile(r"kvm", re.IGNORECASE)
# KVM-named identifiers allowed outside those, each with its reason.
KVM_NAMES_ALLOWED = {
    # The public type of Stats.kvm (README); its figures are KVM's own
    # binary statistics. Renaming it would break users' annotations.
    ("stats", "KvmStats"),
    # The public field itself (README's Stats table), and the metrics that
    # read it into `pytender_kvm_stat` (an output format, README).
    ("stats", "kvm"),
    ("metrics", "kvm"),
    # The host kinds by name (`KVM`, `BHYVE`): the backend selector and the
    # no-hypervisor line name the hypervisors, below the KVM package so that
    # tender/kvm/ may import the line (tender.host sits above it).
    ("backend", "KVM"),
    # The error tender/kvm/ raises, defined with every typed error so that
    # the exit codes are mapped in one place (cli.EXIT_CODES).
    ("errors", "KvmError"),
}


def _unit(parts: tuple[str, ...]) -> str:
    return parts[0] if parts else "__init__"


def _sources() -> list[tuple[tuple[str, ...], ast.Module]]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("").parts
        if rel[-1] == "__init__" and len(rel) > 1:
            rel = rel[:-1]
        out.append((rel, ast.parse(path.read_text(), str(path))))
    return out


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    return skip


def _lazy_names(node: ast.AST) -> list[str]:
    """Imports by string: `import_module("tender.x")`, and the values of a
    lazy-export table (`_WHERE = {"Name": "tender.x"}`, read by
    `import_module` in the package's `__getattr__`)."""
    if (isinstance(node, ast.Call) and node.args
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
            and ast.unparse(node.func).split(".")[-1] == "import_module"):
        return [node.args[0].value]
    if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
            and any(isinstance(t, ast.Name) and t.id == "_WHERE" for t in node.targets)):
        return [v.value for v in node.value.values
                if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    return []


def _imports(tree: ast.Module) -> list[tuple[str, ...]]:
    skip = _type_checking_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif not (names := _lazy_names(node)):
            continue
        for name in names:
            parts = tuple(name.split("."))
            if parts[0] == "tender" and len(parts) > 1 and (
                    parts[1] in LAYERS or (ROOT / parts[1]).exists()):
                found.append(parts[1:])
    return found


def test_every_unit_has_a_layer() -> None:
    units = {_unit(rel) for rel, _ in _sources()}
    assert units - set(LAYERS) == set(), "give each new module a layer in LAYERS"


# Arrows that point up, each with its reason: these ARE exceptions to the
# layering, listed so that they stay few and visible (a stale one fails).
# None: the debug modules' set-up gets tender.debug (which reads the table's
# trace fields, so it sits above the table) handed down by the run assembly
# (Assembly.attach_debug) instead of importing it.
UPWARD_ALLOWED: set[str] = set()


def _upward() -> set[str]:
    wrong = set()
    for rel, tree in _sources():
        src = _unit(rel)
        for target in _imports(tree):
            dst = _unit(target)
            if dst != src and LAYERS[dst] >= LAYERS[src]:
                wrong.add(f"{'.'.join(rel)} -> {'.'.join(target)}")
    return wrong


def test_arrows_point_down() -> None:
    assert _upward() - UPWARD_ALLOWED == set()


def test_every_upward_allowance_is_still_there() -> None:
    assert UPWARD_ALLOWED - _upward() == set()


def test_only_the_kvm_backend_imports_kvm() -> None:
    wrong = []
    for rel, tree in _sources():
        if rel[0] == "kvm" or _unit(rel) in KVM_IMPORTERS or ".".join(rel) in KVM_IMPORTERS:
            continue
        wrong += [f"{'.'.join(rel)} -> {'.'.join(t)}" for t in _imports(tree) if t[0] == "kvm"]
    assert wrong == []


def _identifiers(tree: ast.AST) -> list[str]:
    """Every name the code uses or defines: variables, attributes, classes,
    functions, parameters, keyword arguments, imported names."""
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            out.append(node.id)
        elif isinstance(node, ast.Attribute):
            out.append(node.attr)
        elif isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            out.append(node.name)
        elif isinstance(node, ast.arg):
            out.append(node.arg)
        elif isinstance(node, ast.keyword) and node.arg is not None:
            out.append(node.arg)
        elif isinstance(node, ast.alias):
            out.append(node.asname or node.name.rsplit(".", 1)[-1])
    return out


def _kvm_names() -> set[tuple[str, str]]:
    """(module, identifier) naming KVM outside the modules allowed to import it."""
    found = set()
    for rel, tree in _sources():
        if rel[0] == "kvm" or _unit(rel) in KVM_IMPORTERS or ".".join(rel) in KVM_IMPORTERS:
            continue
        found |= {(".".join(rel), n) for n in _identifiers(tree) if KVM_NAME.search(n)}
    return found


def test_no_kvm_names_in_backend_neutral_code() -> None:
    """No identifier (a constant, a kvm_run field, a class) names KVM
    outside the modules allowed to import it; strings (messages) may."""
    assert _kvm_names() - KVM_NAMES_ALLOWED == set()


def test_every_allowed_kvm_name_is_still_there() -> None:
    """A stale allowance would let the name come back unnoticed."""
    assert KVM_NAMES_ALLOWED - _kvm_names() == set()


def test_the_checker_sees_a_bad_arrow() -> None:
    """The graph reader finds runtime imports and skips TYPE_CHECKING ones."""
    tree = ast.parse("from typing import TYPE_CHECKING\nimport tender.vm\n"
                     "if TYPE_CHECKING:\n    from tender.cli import main\n"
                     "def f():\n    from tender.kvm import ioctls\n")
    assert _imports(tree) == [("vm",), ("kvm",), ("kvm", "ioctls")]


def test_the_checker_sees_imports_by_string() -> None:
    """import_module("tender.x") and a lazy-export table are arrows too."""
    tree = ast.parse("from importlib import import_module\n"
                     "_WHERE = {'Tender': 'tender.vm'}\n"
                     "def f():\n    return import_module('tender.kvm.backend')\n")
    assert sorted(_imports(tree)) == [("kvm", "backend"), ("vm",)]


def test_no_relative_imports() -> None:
    """The graph reader skips relative imports; the code has none."""
    found = [".".join(rel) for rel, tree in _sources() for node in ast.walk(tree)
             if isinstance(node, ast.ImportFrom) and node.level > 0]
    assert found == []


def test_the_checker_sees_kvm_names() -> None:
    """Each kind of identifier is seen; strings are not."""
    tree = ast.parse("from x import KVM_RUN\nclass KvmThing: pass\n"
                     "def kvm_open(kvm_fd): return f(kvm_flag=1, y=a.kvm_run)\n"
                     "msg = 'KVM_RUN failed'\n")
    assert {n for n in _identifiers(tree) if KVM_NAME.search(n)} == {
        "KVM_RUN", "KvmThing", "kvm_open", "kvm_fd", "kvm_flag", "kvm_run"}
    bare = ast.parse("kvm = open_kvm()\nKVM = 1\nx = s._final_kvm\n")
    assert {n for n in _identifiers(bare) if KVM_NAME.search(n)} == {
        "kvm", "open_kvm", "KVM", "_final_kvm"}


def test_the_run_assembly_is_not_the_biggest_module() -> None:
    """Issue 11's "done": tender/vm.py (the run assembly) is no longer the
    biggest file of the package; its parts live in runloop, native, host,
    the backends and the module table."""
    lines = {str(p.relative_to(ROOT)): len(p.read_text().splitlines())
             for p in ROOT.rglob("*.py")}
    vm = lines.pop("vm.py")
    assert vm < max(lines.values()), f"vm.py has {vm} lines, more than any other module"
