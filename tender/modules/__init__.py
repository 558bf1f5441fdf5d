"""The module table: each module declares its option lines, its hypercalls
(Python handler, whether a C twin exists, how --trace records it) and when
it is registered. The dispatch table, the argv grammar, the native mask, the usage text and
the trace's field names are derived from it; adding a hypercall is one new
entry here (plus its handler, and its twin in csrc/ if it has one).

Each module also declares the grammar of its options (argv.pass2_prefix
runs it) and its part of a run (modules/hooks.py): how it attaches and sets
up its devices, the fds it adds to POLL's wait set, and its halt, exit and
loop hooks; tender/vm.py walks the table for those."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tender import abi
from tender.errors import TenderError
from tender.hypercalls.context import Handler
from tender.modules import block, core, debug, hardening, metrics, net, pytender
from tender.modules.hooks import Assembly
from tender.modules.options import ArgState, Call, Module, Option, TraceFields, When

TYPE_CHECKING = False   # as typing's, without importing typing at boot (mypy: true)
if TYPE_CHECKING:
    from typing import Any

    from tender.session import ExitHook, HaltHook

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
    "native_calls",
    "native_capable",
    "option_lines",
    "options",
    "poll_fds",
    "registered",
    "run_hooks",
    "trace_fields",
]


def calls(table: tuple[Module, ...] = TABLE) -> dict[int, Call]:
    return {c.nr: c for m in table for c in m.calls}


def dispatch(has_block: bool, has_net: bool,
             table: tuple[Module, ...] = TABLE) -> dict[int, Handler]:
    attached = frozenset([*(["block"] if has_block else []), *(["net"] if has_net else [])])
    return {nr: c.handler for nr, c in registered(attached, table).items()}


def _on(m: Module, attached: frozenset[str]) -> bool:
    return (m.when is When.ALWAYS or (m.when is When.BLOCK and "block" in attached)
            or (m.when is When.NET and "net" in attached)
            or (m.when is When.DEVICE and m.name in attached))


def registered(attached: frozenset[str], table: tuple[Module, ...] = TABLE) -> dict[int, Call]:
    """A run's hypercalls, given the modules that have a device attached.
    A number two registered modules claim is refused (as Solo5's
    registration): neither would be the one the guest reaches."""
    out: dict[int, Call] = {}
    owner: dict[int, str] = {}
    for m in table:
        if _on(m, attached):
            for c in m.calls:
                if c.nr in out:
                    raise TenderError(f"hypercall {c.nr} is registered by both module "
                                      f"{owner[c.nr]} and module {m.name}")
                out[c.nr], owner[c.nr] = c, m.name
    return out


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


def poll_fds(asm: Assembly, table: tuple[Module, ...] = TABLE) -> dict[int, int]:
    """POLL's wait set for a run: every module's fds, by handle."""
    return {h: fd for m in table if m.poll is not None for h, fd in m.poll(asm).items()}


def native_calls(calls: Mapping[int, Call], polled: Mapping[int, int],
                 nets: Mapping[int, Any]) -> frozenset[int]:
    """Of a run's hypercalls, those C may serve: the ones with a twin, but
    POLL only when every polled fd is a net device's (C's POLL waits on the
    net devices alone)."""
    native = {nr for nr, c in calls.items() if c.native}
    if set(polled) - set(nets):
        native.discard(abi.Hypercall.POLL)
    return frozenset(native)


def _bound(asm: Assembly, hook: Callable[..., Any]) -> Callable[..., Any]:
    return lambda *args: hook(asm, *args)


def run_hooks(asm: Assembly, table: tuple[Module, ...] = TABLE
              ) -> tuple[list[HaltHook], list[HaltHook], list[ExitHook]]:
    """The halt hooks that run before the caller's (`halt_early`: an I/O
    thread stops before anyone reads guest memory), those after, and the
    exit hooks, of the modules that keep state in this run, in table order
    (the run's Assembly bound in)."""
    early: list[HaltHook] = []
    late: list[HaltHook] = []
    exits: list[ExitHook] = []
    for m in table:
        if m.name in asm.state:
            if m.halt is not None:
                (early if m.halt_early else late).append(_bound(asm, m.halt))
            if m.exit is not None:
                exits.append(_bound(asm, m.exit))
    return early, late, exits
