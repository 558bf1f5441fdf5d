"""The module table: each module declares its option lines, its hypercalls
(Python handler, whether a C twin exists, how --trace records it) and when
it is registered. The dispatch table, the argv grammar, the native mask, the usage text and
the trace's field names are derived from it; adding a hypercall is one new
entry here (plus its handler, and its twin in csrc/ if it has one).

Each module also declares the grammar of its options (argv.pass2_prefix
runs it). Not (yet) declared here: device attach and set-up, poll fds and
halt hooks (tender/vm.py, tender/debug/)."""

from __future__ import annotations

from collections.abc import Callable

from tender.hypercalls.context import Handler
from tender.modules import block, core, debug, hardening, metrics, net, pytender
from tender.modules.options import ArgState, Call, Module, Option, TraceFields, When

# In solo5-hvt's order (its usage text and its set-up order).
TABLE: tuple[Module, ...] = (core.MODULE, block.MODULE, net.MODULE, debug.GDB,
                             debug.DUMPCORE, pytender.MODULE, hardening.MODULE, metrics.MODULE)

__all__ = [
    "TABLE",
    "Call",
    "Module",
    "TraceFields",
    "When",
    "calls",
    "compiled_in",
    "dispatch",
    "dispatch_table",
    "finishers",
    "native_capable",
    "option_lines",
    "options",
    "trace_fields",
]


def calls(table: tuple[Module, ...] = TABLE) -> dict[int, Call]:
    return {c.nr: c for m in table for c in m.calls}


def dispatch(has_block: bool, has_net: bool,
             table: tuple[Module, ...] = TABLE) -> dict[int, Handler]:
    on = {When.ALWAYS, *([When.BLOCK] if has_block else []), *([When.NET] if has_net else [])}
    return {c.nr: c.handler for m in table if m.when in on for c in m.calls}


def dispatch_table(has_block: bool, has_net: bool) -> dict[int, Handler]:
    """The hypercalls registered for a run: `core` (WALLTIME, PUTS, POLL)
    always, `block` with a block device, `net` with a net device. HALT is
    not in it: the run loop handles it."""
    return dispatch(has_block, has_net)


def native_capable(table: tuple[Module, ...] = TABLE) -> frozenset[int]:
    return frozenset(c.nr for m in table for c in m.calls if c.native)


def trace_fields(table: tuple[Module, ...] = TABLE) -> dict[int, TraceFields]:
    return {nr: c.trace for nr, c in calls(table).items()}


def compiled_in(table: tuple[Module, ...] = TABLE) -> str:
    # Each name followed by a space, as solo5-hvt prints them.
    return "".join(f"{m.name} " for m in table if m.compiled_in)


def options(table: tuple[Module, ...] = TABLE) -> tuple[Option, ...]:
    """Every module's options; their patterns are disjoint, so order does
    not decide which one reads an argument."""
    return tuple(o for m in table for o in m.options)


def finishers(table: tuple[Module, ...] = TABLE) -> tuple[Callable[[ArgState], None], ...]:
    return tuple(m.finish for m in table if m.finish is not None)


def option_lines(compiled: bool, table: tuple[Module, ...] = TABLE) -> str:
    return "".join(f"{line}\n" for m in table if m.compiled_in == compiled for line in m.usage)
