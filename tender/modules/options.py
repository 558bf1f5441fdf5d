"""What a module declares (Solo5's `struct hvt_module`, as data): its
command-line options (the solo5-hvt grammar, spec 7; an option reads one
argument into an ArgState), its hypercalls, and its run hooks (attach,
set-up, poll fds, start, halt/exit/loop; modules/hooks.py). Pure.

One module, not two: every module-table entry needs both halves, so they
always load together, and a boot pays for one import instead of two."""

from __future__ import annotations

import struct
from collections.abc import Callable
from enum import Enum

from tender import abi
from tender.config import BlockSpec, NetSpec, VmConfig
from tender.errors import UsageError
from tender.hypercalls.context import Handler
from tender.manifest import Manifest
from tender.modules.hooks import Assembly, Booted, Started
from tender.record import field, record

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    import re
    from typing import Any, Protocol

    from tender.hypercalls.halt import Halt
    from tender.session import Outcome, RunningVm

    Loop = Callable[[RunningVm, dict[int, Handler]], Outcome]

_NAME = r"([A-Za-z0-9]{1,67})"


@record
class ArgState:
    """What the options before the current one said (mutable, one parse)."""

    manifest: Manifest
    config: dict[str, Any] = field(default_factory=dict)   # VmConfig keywords
    blocks: dict[str, BlockSpec] = field(default_factory=dict)
    sectors: dict[str, int] = field(default_factory=dict)
    nets: dict[str, NetSpec] = field(default_factory=dict)
    macs: dict[str, bytes] = field(default_factory=dict)
    order: dict[str, None] = field(default_factory=dict)  # device names, in order
    extra: dict[str, Any] = field(default_factory=dict)   # a module's own scratch


if TYPE_CHECKING:
    class Match(Protocol):
        """What an option's apply reads: group N of its match (an re.Match,
        or the tuple a plain prefix pattern gives without re)."""

        def __getitem__(self, group: int, /) -> str: ...
else:
    Match = tuple
Apply = Callable[[ArgState, str, Match], None]

_META = frozenset(".^$*+?{}[]\\|()")


def plain(pattern: str) -> tuple[str, str] | None:
    """A pattern re need not run: a bare literal (-> (literal, "")) or
    `(?s)LITERAL(.*)` / `(?s)LITERAL(.+)` (-> (literal, "*" or "+")); None
    for any other. Most runs pass only such options (--mem=...), and re
    costs ~0.4 MiB and ~1.7 ms of a cold start (issue 10)."""
    if not _META.intersection(pattern):
        return pattern, ""
    for tail in ("*", "+"):
        lit = pattern.removeprefix("(?s)").removesuffix(f"(.{tail})")
        if len(lit) == len(pattern) - len(f"(?s)(.{tail})") and not _META.intersection(lit):
            return lit, tail
    return None


def plain_match(lit: str, tail: str, arg: str) -> tuple[str, ...] | None:
    """re.fullmatch of a plain pattern (see plain), as groups 0 and 1."""
    if not tail:
        return (arg,) if arg == lit else None
    if not arg.startswith(lit) or (tail == "+" and len(arg) == len(lit)):
        return None
    return arg, arg[len(lit):]


@record(frozen=True)
class Option:
    """`pattern` must match the whole argument; `apply` raises TenderError
    for a bad value (the error stops the parse there). A string pattern is
    compiled on first use (re's own cache): a boot compiles only the
    patterns it tries, not the whole table's at import."""

    pattern: str | re.Pattern[str]
    apply: Apply

    def accepts(self, arg: str) -> Match | None:
        if isinstance(self.pattern, str) and (fast := plain(self.pattern)) is not None:
            return plain_match(*fast, arg)
        import re

        return re.fullmatch(self.pattern, arg)


def name_pattern(prefix: str, value: str) -> str:
    """`--PREFIX:NAME=VALUE` with a solo5-hvt device name."""
    return rf"--{prefix}:{_NAME}=({value})"


def invalid(arg: str, *detail: str) -> UsageError:
    return UsageError(f"Invalid option: `{arg}'", detail)


def declared(st: ArgState, name: str, dtype: abi.DeviceType, arg: str) -> None:
    if st.manifest.handle_of(name, dtype) is None:
        raise invalid(arg, f"Resource not declared in manifest: '{name}'")


def only(st: ArgState, dtype: abi.DeviceType, arg: str) -> str:
    """The one device of `dtype` the manifest declares (--disk, --net)."""
    names = [e.name for _, e in st.manifest.devices() if e.type == dtype]
    if len(names) != 1:
        what = ", ".join(f"'{n}'" for n in names) or "none"
        raise UsageError(
            f"{arg.split('=')[0]} needs exactly one {dtype.name} device in the manifest "
            f"(it declares: {what}); use --{'block' if dtype == 1 else 'net'}:NAME=..."
        )
    return names[0]


def setter(key: str, convert: Callable[[str], Any]) -> Apply:
    """An option whose first group, converted, is VmConfig field `key`."""
    def apply(st: ArgState, _arg: str, m: Match) -> None:
        st.config[key] = convert(m[1])
    return apply


class When(Enum):
    """When a module's hypercalls are in the dispatch table (as solo5-hvt
    registers them: block and net only with such a device attached)."""

    ALWAYS = "always"
    BLOCK = "block"
    NET = "net"
    DEVICE = "device"   # with one of the module's own devices attached


@record(frozen=True)
class TraceFields:
    """How --trace records one hypercall's argument struct."""

    layout: struct.Struct
    names: tuple[str, ...]        # the struct's fields, in order
    written: tuple[str, ...] = ()  # fields the tender writes (the result)
    vary: tuple[str, ...] = ()     # fields that differ run to run


@record(frozen=True)
class Call:
    """One hypercall a module registers."""

    nr: int
    handler: Handler          # the Python reference
    native: bool              # a C twin exists in csrc/vcpu_loop.c
    trace: TraceFields


@record(frozen=True)
class Module:
    """One row of the module table. (Every boot-path record has a
    docstring: without one, its __doc__ is made by dataclasses on first read.)"""

    name: str
    usage: tuple[str, ...] = ()      # option lines of the usage text
    options: tuple[Option, ...] = ()  # the grammar of those options
    calls: tuple[Call, ...] = ()
    when: When = When.ALWAYS
    compiled_in: bool = True         # listed under "Compiled-in modules:"
    # After the options: turn the module's scratch into VmConfig fields.
    finish: Callable[[ArgState], None] | None = None
    # The run (tender/vm.py walks these in table order; modules/hooks.py):
    # the module's device specs in a config (attach opens them, all modules'
    # together in command-line order),
    devices: Callable[[VmConfig], tuple[Any, ...]] | None = None
    attach: Callable[[Assembly, Any], None] | None = None     # step 4: open one spec
    setup: Callable[[Assembly, Booted], None] | None = None   # step 11: the VM exists
    poll: Callable[[Assembly], dict[int, int]] | None = None  # POLL's fds, by handle
    start: Callable[[Assembly, Started], None] | None = None  # the context exists
    # Only while the module has state in the run (Assembly.state[name]):
    halt: Callable[[Assembly, RunningVm, Halt], None] | None = None
    halt_early: bool = False        # before the caller's halt hooks (I/O threads)
    exit: Callable[[Assembly, RunningVm, Any], bool] | None = None
    around: Callable[[Assembly, RunningVm, dict[int, Handler], Loop], Outcome] | None = None
