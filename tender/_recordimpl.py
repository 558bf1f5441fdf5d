"""The run-time half of tender.record: `dataclasses.dataclass` semantics
(Python 3.11) for the options the package uses, built from closures.

dataclasses itself costs a boot ~12 ms to import (inspect, ast, dis,
tokenize) and ~0.4 ms per class (it exec()s generated source for every
method). Here a class costs a few dict operations. What only tooling asks
for (`__dataclass_fields__`, `__dataclass_params__`, `__signature__`, a
generated `__doc__`) is built on first access by dataclasses itself, from a
reference dataclass made of the same declaration (`reference`), so
dataclasses.fields/replace/asdict/is_dataclass and inspect see a dataclass.
tests/test_record.py holds every record in the package to that reference."""

from __future__ import annotations

from _thread import get_ident
from operator import attrgetter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: object = _Missing()
_UNSUPPORTED = "record supports only default, default_factory, repr, hash and compare"


class Field:
    """A declared field: what `field(...)` returns and what a record keeps."""

    __slots__ = ("compare", "default", "default_factory", "hash", "name", "repr", "type")

    def __init__(self, default: object, default_factory: object, repr: bool,
                 hash: bool | None, compare: bool) -> None:
        self.name = ""
        self.type: object = None
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.hash = hash
        self.compare = compare


def field(*, default: object = MISSING, default_factory: object = MISSING, init: bool = True,
          repr: bool = True, hash: bool | None = None, compare: bool = True,
          metadata: object = None, kw_only: object = MISSING) -> Field:
    """dataclasses.field, for the options records support."""
    if default is not MISSING and default_factory is not MISSING:
        raise ValueError("cannot specify both default and default_factory")
    if not init or metadata is not None or kw_only is not MISSING:
        raise TypeError(_UNSUPPORTED)
    return Field(default, default_factory, repr, hash, compare)


class Spec:
    """What one record class declared: its own fields and all of them."""

    __slots__ = ("cls", "doc", "eq", "fields", "frozen", "init", "own", "qualname",
                 "repr", "slots")

    def __init__(self, cls: type, own: tuple[Field, ...], fields: tuple[Field, ...],
                 frozen: bool, eq: bool, repr: bool, init: bool, slots: bool) -> None:
        self.cls = cls
        self.own = own
        self.fields = fields
        self.frozen = frozen
        self.eq = eq
        self.repr = repr
        self.init = init
        self.slots = slots
        self.qualname = cls.__qualname__
        self.doc: str | None = cls.__dict__.get("__doc__")


def _is_classvar(annotation: object) -> bool:
    if isinstance(annotation, str) and "Var" not in annotation:
        return False            # the usual case, cheaply
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return isinstance(text, str) and text.split("[")[0].strip() in (
        "ClassVar", "typing.ClassVar", "InitVar", "dataclasses.InitVar")


def _own_fields(cls: type) -> tuple[Field, ...]:
    out = []
    # The class's own annotations (cls.__annotations__ may be a base's);
    # inspect.get_annotations would import inspect.
    own: dict[str, object] = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
    for name, annotation in own.items():
        if _is_classvar(annotation):
            raise TypeError(f"record {cls.__qualname__}.{name}: ClassVar/InitVar not supported")
        value = cls.__dict__.get(name, MISSING)
        f = value if isinstance(value, Field) else Field(value, MISSING, True, None, True)
        f.name, f.type = name, annotation
        if f.default_factory is MISSING and type(f.default).__hash__ is None:
            raise ValueError(f"mutable default {type(f.default)} for field {name} is not "
                             "allowed: use default_factory")
        # As dataclasses: a default stays a class attribute, a factory does not.
        if isinstance(value, Field):
            if f.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        out.append(f)
    return tuple(out)


def _spec_of(cls: type) -> Spec | None:
    spec = cls.__dict__.get("__record__")
    return spec if isinstance(spec, Spec) else None


def _all_fields(cls: type, own: tuple[Field, ...], frozen: bool) -> tuple[Field, ...]:
    by_name: dict[str, Field] = {}
    record_bases = False
    any_frozen = False
    for base in cls.__mro__[-1:0:-1]:
        if "__dataclass_fields__" in base.__dict__ and _spec_of(base) is None:
            raise TypeError(f"record {cls.__qualname__}: base {base.__qualname__} is a "
                            "dataclass, not a record")
        spec = _spec_of(base)
        if spec is not None:
            record_bases = True
            any_frozen = any_frozen or spec.frozen
            for f in spec.fields:
                by_name[f.name] = f
    if record_bases and any_frozen and not frozen:
        raise TypeError("cannot inherit non-frozen dataclass from a frozen one")
    if record_bases and not any_frozen and frozen:
        raise TypeError("cannot inherit frozen dataclass from a non-frozen one")
    for f in own:
        by_name[f.name] = f
    fields = tuple(by_name.values())
    seen_default = False
    for f in fields:
        has_default = f.default is not MISSING or f.default_factory is not MISSING
        if seen_default and not has_default:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
        seen_default = seen_default or has_default
    return fields


def _plural(n: int) -> str:
    return "" if n == 1 else "s"


def _names_text(names: list[str]) -> str:
    quoted = [repr(n) for n in names]
    if len(quoted) == 1:
        return quoted[0]
    if len(quoted) == 2:
        return f"{quoted[0]} and {quoted[1]}"
    return ", ".join(quoted[:-2]) + f", {quoted[-2]}, and {quoted[-1]}"


def bind(qualname: str, fields: tuple[Field, ...], where: dict[str, int], defcount: int,
         args: tuple[object, ...], kwargs: dict[str, object]) -> list[object]:
    """Arguments to field values in order, with CPython 3.11's own checks in
    its order and its TypeError texts (ceval.c initialize_locals). `where`:
    field name -> index; `defcount`: how many (trailing) fields default."""
    n = len(fields)
    values: list[object] = list(args[:n]) + [MISSING] * max(0, n - len(args))
    for key, value in kwargs.items():
        i = where.get(key)
        if key == "self":       # the generated __init__'s first parameter
            raise TypeError(f"{qualname}() got multiple values for argument 'self'")
        if i is None:
            raise TypeError(f"{qualname}() got an unexpected keyword argument '{key}'")
        if values[i] is not MISSING:
            raise TypeError(f"{qualname}() got multiple values for argument '{key}'")
        values[i] = value
    if len(args) > n:
        sig = f"from {n + 1 - defcount} to {n + 1}" if defcount else str(n + 1)
        given = len(args) + 1
        raise TypeError(f"{qualname}() takes {sig} positional argument"
                        f"{'s' if defcount or n + 1 != 1 else ''} but {given} "
                        f"{'was' if given == 1 else 'were'} given")
    missing = [f.name for f, v in zip(fields[:n - defcount], values, strict=False)
               if v is MISSING]
    if missing:
        raise TypeError(f"{qualname}() missing {len(missing)} required positional "
                        f"argument{_plural(len(missing))}: {_names_text(missing)}")
    for i, f in enumerate(fields):
        if values[i] is MISSING:
            factory: Callable[[], object] | object = f.default_factory
            values[i] = factory() if callable(factory) else f.default
    return values


def _make_init(spec: Spec) -> Callable[..., None]:
    fields = spec.fields
    names = tuple(f.name for f in fields)
    n = len(names)
    qualname = f"{spec.qualname}.__init__"
    where = {name: i for i, name in enumerate(names)}
    defcount = sum(1 for f in fields
                   if f.default is not MISSING or f.default_factory is not MISSING)
    post = getattr(spec.cls, "__post_init__", None) is not None
    setter = object.__setattr__
    # Positional calls with every field (an exit per hypercall) skip bind();
    # the two bodies are written out because a call per field is measurable.
    if spec.slots:
        def __init__(self: object, /, *args: object, **kwargs: object) -> None:
            values = args if len(args) == n and not kwargs else bind(
                qualname, fields, where, defcount, args, kwargs)
            for name, value in zip(names, values):  # noqa: B905 (same length; strict= costs)
                setter(self, name, value)
            if post:
                self.__post_init__()  # type: ignore[attr-defined]
    else:
        def __init__(self: object, /, *args: object, **kwargs: object) -> None:
            # A frozen record's __setattr__ is bypassed, as dataclasses' own
            # object.__setattr__ per field bypasses it.
            # zip without strict=: the lengths are equal, and strict=True
            # alone costs ~0.2 us a call.
            self.__dict__.update(zip(names, args if len(args) == n and not kwargs  # noqa: B905
                                     else bind(qualname, fields, where, defcount, args,
                                               kwargs)))
            if post:
                self.__post_init__()  # type: ignore[attr-defined]

    __init__.__qualname__ = qualname
    return __init__


def _key(names: tuple[str, ...]) -> Callable[[object], tuple[object, ...]]:
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    if not names:
        return lambda obj: ()
    return attrgetter(*names)


def _make_repr(spec: Spec) -> Callable[[object], str]:
    shown = tuple(f.name for f in spec.fields if f.repr)
    get = _key(shown)
    running: set[tuple[int, int]] = set()

    def __repr__(self: object) -> str:
        key = (id(self), get_ident())
        if key in running:      # as dataclasses' _recursive_repr
            return "..."
        running.add(key)
        try:
            parts = ", ".join(f"{name}={value!r}"
                              for name, value in zip(shown, get(self), strict=True))
        finally:
            running.discard(key)
        return f"{type(self).__qualname__}({parts})"

    __repr__.__qualname__ = f"{spec.qualname}.__repr__"
    return __repr__


def _make_eq(spec: Spec) -> Callable[[object, object], object]:
    get = _key(tuple(f.name for f in spec.fields if f.compare))

    def __eq__(self: object, other: object) -> object:
        if other.__class__ is self.__class__:
            return get(self) == get(other)
        return NotImplemented

    __eq__.__qualname__ = f"{spec.qualname}.__eq__"
    return __eq__


def _make_hash(spec: Spec) -> Callable[[object], int]:
    get = _key(tuple(f.name for f in spec.fields
                     if (f.compare if f.hash is None else f.hash)))

    def __hash__(self: object) -> int:
        return hash(get(self))

    __hash__.__qualname__ = f"{spec.qualname}.__hash__"
    return __hash__


def _frozen_error(message: str) -> AttributeError:
    # The exact class users catch; imported only when a frozen record is
    # written to (a bug or a test), never on a boot.
    from dataclasses import FrozenInstanceError

    return FrozenInstanceError(message)


def _make_frozen(cls: Any, names: frozenset[str]) -> tuple[Callable[..., None], ...]:
    def __setattr__(self: object, name: str, value: object) -> None:
        if type(self) is cls or name in names:
            raise _frozen_error(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: object, name: str) -> None:
        if type(self) is cls or name in names:
            raise _frozen_error(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    __setattr__.__qualname__ = f"{cls.__qualname__}.__setattr__"
    __delattr__.__qualname__ = f"{cls.__qualname__}.__delattr__"
    return __setattr__, __delattr__


def reference(cls: type) -> type:
    """The dataclass that `dataclasses.dataclass` makes of this record's
    declaration (cached on the record). Imports dataclasses."""
    spec = _spec_of(cls)
    if spec is None:
        raise TypeError(f"{cls.__qualname__} is not a record")
    cached = cls.__dict__.get("__record_reference__")
    if isinstance(cached, type):
        return cached
    import dataclasses

    ns: dict[str, object] = {
        "__module__": cls.__module__, "__qualname__": spec.qualname, "__doc__": spec.doc,
        "__annotations__": {f.name: f.type for f in spec.own},
    }
    for f in spec.own:
        if f.default is not MISSING or f.default_factory is not MISSING:
            kw: dict[str, Any] = {"repr": f.repr, "hash": f.hash, "compare": f.compare}
            if f.default is not MISSING:
                kw["default"] = f.default
            else:
                kw["default_factory"] = f.default_factory
            ns[f.name] = dataclasses.field(**kw)
    bases = tuple(reference(b) if _spec_of(b) is not None else b for b in cls.__bases__)
    made: type = dataclasses.dataclass(type(cls.__name__, bases, ns), init=spec.init,
                                 repr=spec.repr, eq=spec.eq, frozen=spec.frozen,
                                 slots=spec.slots)
    type.__setattr__(cls, "__record_reference__", made)
    return made


class _FromReference:
    """A class attribute built on first access from the reference dataclass,
    then stored in its place (tooling only: fields(), replace(), inspect).
    `own_only`: not stored, and absent for instances and subclasses
    (`__signature__`, which a dataclass does not have as an attribute)."""

    def __init__(self, owner: type, name: str, build: Callable[[type], object],
                 own_only: bool = False) -> None:
        self.owner = owner
        self.name = name
        self.build = build
        self.own_only = own_only

    def __get__(self, obj: object, objtype: type | None = None) -> object:
        if self.own_only and (obj is not None or objtype is not self.owner):
            raise AttributeError(self.name)
        value = self.build(reference(self.owner))
        if not self.own_only:
            type.__setattr__(self.owner, self.name, value)
        return value


def _signature(ref: type) -> object:
    import inspect

    return inspect.signature(ref)


def _set_new(cls: type, name: str, value: object) -> bool:
    if name in cls.__dict__:
        return True
    type.__setattr__(cls, name, value)
    return False


def _add_slots(cls: type, fields: tuple[Field, ...]) -> type:
    ns = dict(cls.__dict__)
    inherited = {s for b in cls.__mro__[1:-1] for s in b.__dict__.get("__slots__", ())}
    ns["__slots__"] = tuple(f.name for f in fields if f.name not in inherited)
    for f in fields:
        ns.pop(f.name, None)
    ns.pop("__dict__", None)
    ns.pop("__weakref__", None)
    made = type(cls)(cls.__name__, cls.__bases__, ns)
    made.__qualname__ = cls.__qualname__
    return made


def _getstate(self: object) -> list[object]:
    return [getattr(self, f.name) for f in type(self).__record__.fields]  # type: ignore[attr-defined]


def _setstate(self: object, state: list[object]) -> None:
    for f, value in zip(type(self).__record__.fields, state, strict=True):  # type: ignore[attr-defined]
        object.__setattr__(self, f.name, value)


def _process(cls: type, init: bool, repr: bool, eq: bool, frozen: bool, slots: bool) -> type:
    class_hash = cls.__dict__.get("__hash__", MISSING)
    explicit_hash = not (class_hash is MISSING or (class_hash is None and "__eq__" in
                                                   cls.__dict__))
    own = _own_fields(cls)
    fields = _all_fields(cls, own, frozen)
    spec = Spec(cls, own, fields, frozen, eq, repr, init, slots)
    if init:
        _set_new(cls, "__init__", _make_init(spec))
    if repr:
        _set_new(cls, "__repr__", _make_repr(spec))
    if eq:
        _set_new(cls, "__eq__", _make_eq(spec))
    if frozen:
        # Bound to the class as declared, as dataclasses 3.11 does (before
        # slots=True makes a new class; its non-field writes then fail alike).
        for fn in _make_frozen(cls, frozenset(f.name for f in fields)):
            if _set_new(cls, fn.__name__, fn):
                raise TypeError(f"Cannot overwrite attribute {fn.__name__} in class "
                                f"{cls.__name__}")
    if eq and not explicit_hash:
        type.__setattr__(cls, "__hash__", _make_hash(spec) if frozen else None)
    _set_new(cls, "__match_args__", tuple(f.name for f in fields))
    if slots:
        cls = _add_slots(cls, fields)
        spec.cls = cls
        if frozen:
            _set_new(cls, "__getstate__", _getstate)
            _set_new(cls, "__setstate__", _setstate)
    type.__setattr__(cls, "__record__", spec)
    for lazy in ("__dataclass_fields__", "__dataclass_params__"):
        type.__setattr__(cls, lazy, _FromReference(cls, lazy, attrgetter(lazy)))
    type.__setattr__(cls, "__signature__", _FromReference(cls, "__signature__", _signature,
                                                                 own_only=True))
    if not spec.doc:
        type.__setattr__(cls, "__doc__", _FromReference(cls, "__doc__", attrgetter("__doc__")))
    return cls


def record(cls: type | None = None, /, *, init: bool = True, repr: bool = True,
           eq: bool = True, order: bool = False, unsafe_hash: bool = False,
           frozen: bool = False, match_args: bool = True, kw_only: bool = False,
           slots: bool = False, weakref_slot: bool = False) -> object:
    """dataclasses.dataclass for records (see the module docstring)."""
    if order or unsafe_hash or not match_args or kw_only or weakref_slot:
        raise TypeError("record supports only init, repr, eq, frozen and slots")

    def wrap(c: type) -> type:
        return _process(c, init, repr, eq, frozen, slots)

    return wrap if cls is None else wrap(cls)


def replace(obj: object, /, **changes: object) -> object:
    """dataclasses.replace; for a record without importing dataclasses."""
    spec = _spec_of(type(obj))
    if spec is None or not spec.init:
        import dataclasses

        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    for f in spec.fields:
        if f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return type(obj)(**changes)


def is_record(cls: object) -> bool:
    """True for a class made by @record (not for its plain subclasses)."""
    return isinstance(cls, type) and _spec_of(cls) is not None


__all__ = ["MISSING", "field", "is_record", "record", "reference", "replace"]
