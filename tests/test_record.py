"""tender.record against the reference library: every @record class in the
package, and the same class made by `dataclasses.dataclass` from the same
source (its module executed again with tender.record's names bound to
dataclasses'), must agree: fields, params, defaults, signature, doc,
construction results and TypeError texts, repr/eq/hash, frozen writes and
deletes, replace/asdict/astuple. And mypy sees a record as a dataclass."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import pkgutil
import re
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tender
import tender.record
from tender._recordimpl import is_record

_ADDR = re.compile(r" at 0x[0-9a-f]+")


def _norm(x: object) -> str:
    """repr without object addresses (default factories make fresh objects)."""
    return _ADDR.sub(" at 0x?", repr(x))


def _records() -> list[type]:
    for m in pkgutil.walk_packages(tender.__path__, "tender."):
        importlib.import_module(m.name)
    return sorted((v for name, mod in list(sys.modules.items()) if name.startswith("tender")
                   for v in vars(mod).values() if is_record(v) and v.__module__ == name),
                  key=lambda c: (c.__module__, c.__qualname__))


RECORDS = _records()


def _reference_module(name: str) -> types.ModuleType:
    """`name` executed again, with @record, field and replace being
    dataclasses' own; not entered in sys.modules."""
    real = sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, real.__file__)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    saved = {k: getattr(tender.record, k) for k in ("record", "field", "replace")}
    try:
        tender.record.record = dataclasses.dataclass  # type: ignore[assignment]
        tender.record.field = dataclasses.field
        tender.record.replace = dataclasses.replace
        spec.loader.exec_module(mod)
    finally:
        for k, v in saved.items():
            setattr(tender.record, k, v)
    return mod


_REFS: dict[str, types.ModuleType] = {}


def reference_of(cls: type) -> type:
    mod = _REFS.get(cls.__module__)
    if mod is None:
        mod = _REFS[cls.__module__] = _reference_module(cls.__module__)
    ref = mod
    for part in cls.__qualname__.split("."):
        ref = getattr(ref, part)
    assert isinstance(ref, type) and dataclasses.is_dataclass(ref) and not is_record(ref)
    return ref


def test_the_walk_finds_the_boot_path_records() -> None:
    names = {f"{c.__module__}.{c.__qualname__}" for c in RECORDS}
    assert {"tender.config.VmConfig", "tender.exits.Hypercall", "tender.stats.Stats",
            "tender.kvm.backend.KvmExit", "tender.hypercalls.context.Context"} <= names
    assert len(RECORDS) >= 40


def _field_view(cls: type) -> list[tuple[object, ...]]:
    out = []
    for f in dataclasses.fields(cls):
        factory = f.default_factory
        made = _norm(factory()) if factory is not dataclasses.MISSING else None
        out.append((f.name, f.type, _norm(f.default), made, f.init, f.repr, f.hash, f.compare,
                    f.kw_only, dict(f.metadata)))
    return out


def _class_view(cls: type) -> dict[str, object]:
    names = [f.name for f in dataclasses.fields(cls)]
    return {
        "fields": _field_view(cls),
        "params": repr(cls.__dataclass_params__),  # type: ignore[attr-defined]
        "match_args": cls.__match_args__,  # type: ignore[attr-defined]
        "doc": cls.__doc__,
        "signature": _norm(str(inspect.signature(cls))),
        "slots": getattr(cls, "__slots__", None),
        "hash is None": cls.__hash__ is None,
        "class attrs": [_norm(getattr(cls, n, "<absent>")) for n in names],
        "has dict": hasattr(cls, "__dict__") and "__dict__" in dir(cls),
        "mro": [b.__name__ for b in cls.__mro__],
    }


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_class_matches_the_dataclass(cls: type) -> None:
    assert _class_view(cls) == _class_view(reference_of(cls))
    assert dataclasses.is_dataclass(cls)


def _outcome(fn: object, *args: object, **kw: object) -> tuple[str, str]:
    """A result's normalised repr, or the error's class and message."""
    try:
        return ("ok", _norm(fn(*args, **kw)))  # type: ignore[operator]
    except Exception as e:
        return (type(e).__name__, str(e))


VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2, 2**64), st.text(max_size=3),
                   st.binary(max_size=3), st.tuples(st.integers(0, 9)),
                   st.sampled_from([b"\0" * 6, "a.img", 4096, 512]))


@st.composite
def calls(draw: st.DrawFn, cls: type) -> tuple[tuple[object, ...], dict[str, object]]:
    names = [f.name for f in dataclasses.fields(cls)]
    n_pos = draw(st.integers(0, len(names) + 2))
    args = tuple(draw(VALUES) for _ in range(n_pos))
    keys = draw(st.lists(st.sampled_from([*names, "bogus", "self"]), unique=True,
                         max_size=3))
    return args, {k: draw(VALUES) for k in keys}


def _hash_rule(obj: object) -> bool:
    """hash(obj) is that of its hashed fields' tuple (values from default
    factories differ between the two classes, so not the numbers)."""
    key = tuple(getattr(obj, f.name) for f in dataclasses.fields(obj)  # type: ignore[arg-type]
                if (f.compare if f.hash is None else f.hash))
    return hash(obj) == hash(key)


def _behaviour(cls: type, args: tuple[object, ...], kw: dict[str, object],
               attr: str, value: object, changes: dict[str, object]) -> list[object]:
    made = _outcome(cls, *args, **kw)
    out: list[object] = [made]
    if made[0] != "ok":
        return out
    a, b = cls(*args, **kw), cls(*args, **kw)
    out += [a == b, a != b, a.__eq__(object()), _outcome(_hash_rule, a),
            _outcome(hash, a) == _outcome(hash, b)]
    out += [_outcome(dataclasses.asdict, a), _outcome(dataclasses.astuple, a),
            _outcome(dataclasses.replace, a, **changes),
            _outcome(tender.record.replace, a, **changes)]
    out += [_outcome(setattr, a, attr, value), _outcome(repr, a), _outcome(delattr, b, attr),
            _outcome(repr, b), _outcome(dataclasses.replace, b)]
    return out


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_instances_behave_as_the_dataclass(cls: type) -> None:
    ref = reference_of(cls)
    names = [f.name for f in dataclasses.fields(cls)] or ["x"]

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(call=calls(cls), attr=st.sampled_from([*names, "other"]), value=VALUES,
           changes=st.dictionaries(st.sampled_from([*names, "bogus"]), VALUES, max_size=2))
    def check(call: tuple[tuple[object, ...], dict[str, object]], attr: str, value: object,
              changes: dict[str, object]) -> None:
        args, kw = call
        assert (_behaviour(cls, args, kw, attr, value, changes)
                == _behaviour(ref, args, kw, attr, value, changes))

    check()


def test_defaults_and_factories_as_the_dataclass() -> None:
    """Each factory runs per instance; a default is the declared object."""
    from tender.hypercalls.context import Context
    from tender.modules.options import ArgState

    a, b = ArgState(None), ArgState(None)  # type: ignore[arg-type]
    assert a == b and a.config is not b.config and a.config == {}
    c, d = Context(None), Context(None)  # type: ignore[arg-type]
    assert c.tally is not d.tally and c.console_fd == 1 and c.poller is None


def test_frozen_error_is_the_dataclasses_one() -> None:
    from tender.exits import Hypercall

    h = Hypercall(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'nr'"):
        h.nr = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field 'gpa'"):
        del h.gpa  # type: ignore[misc]


def test_recursive_repr_as_the_dataclass() -> None:
    from tender.modules.options import ArgState

    a = ArgState(None)  # type: ignore[arg-type]
    a.extra["me"] = a
    ref = reference_of(ArgState)(None)
    ref.extra["me"] = ref
    assert repr(a) == repr(ref) and "..." in repr(a)


def test_declaration_errors_as_dataclasses() -> None:
    def declare(deco: object, body: dict[str, object]) -> tuple[str, str]:
        ns = {"__annotations__": {k: "int" for k in body}, **{k: v for k, v in body.items()
                                                              if v is not None}}
        return _outcome(deco, type("K", (), ns))

    rec, dc = tender.record.record, dataclasses.dataclass
    for body in ({"a": 1, "b": None}, {"a": []}, {"a": {}}):
        assert declare(rec, body) == declare(dc, body)


MYPY_SNIPPET = """\
from __future__ import annotations
{imports}

@record(frozen=True)
class P:
    x: int
    y: str = "a"
    z: list[int] = field(default_factory=list)

@record
class M:
    n: int

p = P(1)
p.x = 2
P("a")
P(1, "b", [], 4)
P(x=1, w=2)
m = M(3)
m.n = "s"
reveal_type(p.y)
reveal_type(P.__init__)
q: P = replace(p, x=5)
replace(p, x="s")
"""


def _mypy(tmp: Path, imports: str) -> list[str]:
    src = tmp / "snippet.py"
    src.write_text(MYPY_SNIPPET.format(imports=imports))
    r = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                        "--follow-imports=silent", str(src)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    lines = [line.split(":", 1)[1] for line in r.stdout.splitlines() if ": " in line]
    assert any("Revealed type" in line for line in lines), r.stdout + r.stderr
    return lines


def test_mypy_sees_a_dataclass(tmp_path: Path) -> None:
    ours = _mypy(tmp_path, "from tender.record import field, record, replace")
    ref = _mypy(tmp_path, "from dataclasses import dataclass as record, field, replace")
    assert ours == ref
    assert sum("error" in line for line in ours) >= 6, ours


def _boot_modules() -> Iterator[str]:
    yield from ("tender.exits", "tender.config", "tender.stats")


def test_no_dataclasses_import_for_records() -> None:
    """Declaring and using records (as a boot does) imports neither
    dataclasses nor inspect; asking for fields() does, on first use."""
    code = ("import sys\n"
            + "".join(f"import {m}\n" for m in _boot_modules())
            + "from tender.exits import Hypercall\n"
            "h = Hypercall(1, 2); repr(h); hash(h); h == Hypercall(1, 2)\n"
            "from tender.record import replace\nreplace(h, nr=3)\n"
            "before = sorted({'dataclasses', 'inspect'} & set(sys.modules))\n"
            "import dataclasses\nnames = [f.name for f in dataclasses.fields(h)]\n"
            "print(before, names)\n")
    r = subprocess.run([sys.executable, "-I", "-S", "-c",
                        f"import sys; sys.path[:0] = {sys.path!r}\n" + code],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout == "[] ['nr', 'gpa']\n", r.stdout + r.stderr


def test_readme_record_snippet() -> None:
    """README "Start-up cost": the snippet runs as printed, under -I -S,
    without importing dataclasses."""
    text = (ROOT / "README.md").read_text().split("## Start-up cost", 1)[1]
    snippet = text.split("```python\n", 1)[1].split("```", 1)[0]
    code = (f"import sys; sys.path[:0] = {sys.path!r}\n" + snippet
            + "print(sorted({'dataclasses', 'typing'} & set(sys.modules)))\n")
    r = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                       text=True, timeout=60)
    assert r.stdout == "Point(x=1, tags=())\n[]\n", r.stdout + r.stderr
