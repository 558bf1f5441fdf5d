"""Debug modules: gdb stub, dumpcore, hypercall trace.

vm.py imports this package only when one of them was asked for, and talks
to them through one `DebugSession`: halt and exit hooks, a handler-table
wrapper, and `run`, which brackets the vCPU loop (wait for gdb first;
report the end to the trace and to gdb)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tender.errors import TenderError

if TYPE_CHECKING:
    from tender.config import VmConfig
    from tender.debug.dumpcore import Dumpcore
    from tender.debug.gdbstub import GdbStub
    from tender.debug.trace import Tracer
    from tender.debugview import DebugView
    from tender.hypercalls import Handler
    from tender.hypercalls.halt import Halt
    from tender.memory import GuestMemory
    from tender.session import ExitHook, HaltHook, Outcome, RunningVm

    Loop = Callable[[RunningVm, dict[int, Handler]], Outcome]


class DebugSession:
    def __init__(self, trace: Tracer | None, dumpcore: Dumpcore | None,
                 gdb: GdbStub | None) -> None:
        self.trace = trace
        self.dumpcore = dumpcore
        self.gdb = gdb

    @property
    def halt_hooks(self) -> tuple[HaltHook, ...]:
        # trace first (records the HALT), then the core, then gdb's W packet
        return (self._on_halt,)

    @property
    def exit_hooks(self) -> tuple[ExitHook, ...]:
        return (self._on_exit,)

    def _on_halt(self, _vm: RunningVm, h: Halt) -> None:
        if self.trace is not None:
            self.trace.on_halt(h.status, h.cookie, h.trap_frame)
        if self.dumpcore is not None:
            self.dumpcore.on_halt(h.status, h.trap_frame)
        if self.gdb is not None:
            self.gdb.on_halt(h.status)

    def _on_exit(self, _vm: RunningVm, e: Any) -> bool:
        from tender.exits import HostExit

        if self.trace is not None and isinstance(e, HostExit):
            self.trace.on_vmexit(e.reason, e.trace_fields())
        return self.gdb is not None and self.gdb.on_exit(e)

    def run(self, vm: RunningVm, table: dict[int, Handler], loop: Loop) -> Outcome:
        if self.trace is not None:
            table = self.trace.wrap(table)
        try:
            if self.gdb is not None:
                self.gdb.start()
            out = loop(vm, table)
        except TenderError as exc:
            if self.trace is not None:
                self.trace.end(None, exc.message)
            if self.gdb is not None:
                self.gdb.on_error()
            raise
        if self.trace is not None:
            self.trace.end(out.status)
        return out

    def close(self) -> None:
        for part in (self.gdb, self.trace):
            if part is not None:
                part.close()


def attach_debug(cfg: VmConfig, debug_view: Callable[[], DebugView], mem: GuestMemory,
                 diag: Callable[[str], None]) -> DebugSession:
    """Module set-up: every bad argument (dir, port, trace path) fails here,
    before the guest runs. `debug_view` (the backend's) is asked only by gdb
    and dumpcore; a backend without one refuses there in one line."""
    trace = dumpcore = gdb = None
    try:
        view = debug_view() if cfg.gdb_port is not None or cfg.dumpcore is not None else None
        if cfg.trace is not None:
            from tender.debug.trace import Tracer

            trace = Tracer(cfg.trace)
        if cfg.gdb_port is not None and view is not None:
            from tender.debug.gdbstub import GdbStub

            gdb = GdbStub(cfg.gdb_port, view, mem, cfg.kernel, diag)
        if cfg.dumpcore is not None and view is not None:
            from tender.debug.dumpcore import Dumpcore

            dumpcore = Dumpcore(cfg.dumpcore, view, mem, diag)
    except TenderError:
        DebugSession(trace, None, gdb).close()
        raise
    return DebugSession(trace, dumpcore, gdb)
