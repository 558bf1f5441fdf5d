"""The debug modules' declarations: gdb, dumpcore (set up by tender.debug).

gdb, dumpcore and --trace share one `tender.debug.DebugSession` (one halt
hook in the order trace, core, gdb, and one bracket around the vCPU loop),
so its hooks are declared once, on the first debug row."""

from __future__ import annotations

from tender.errors import TenderError
from tender.modules.hooks import Assembly, Booted
from tender.modules.options import ArgState, Match, Module, Option, setter

TYPE_CHECKING = False   # as typing's, without importing typing at boot (mypy: true)
if TYPE_CHECKING:
    from typing import Any

    from tender.hypercalls import Handler
    from tender.hypercalls.halt import Halt
    from tender.modules.options import Loop
    from tender.session import Outcome, RunningVm

_PORT = r"--gdb-port=(\d+)"


def _gdb(st: ArgState, _arg: str, _m: Match) -> None:
    st.extra["gdb"] = True


def _gdb_port(st: ArgState, arg: str, _m: Match) -> None:
    import re

    m = re.fullmatch(_PORT, arg)
    if m is None or int(m[1]) > 65535:
        raise TenderError("Malformed argument to --gdb-port")
    st.extra["gdb_port"] = int(m[1])


def _gdb_finish(st: ArgState) -> None:
    # --gdb-port alone does not start the stub (solo5-hvt).
    st.config["gdb_port"] = st.extra.get("gdb_port", 1234) if st.extra.get("gdb") else None


def _setup(asm: Assembly, vm: Booted) -> None:
    """Every bad argument (dir, port, trace path) fails here, before the
    guest runs; nothing is imported or installed unless one was asked for."""
    cfg = asm.config
    if cfg.gdb_port is None and cfg.dumpcore is None and cfg.trace is None:
        return
    # tender.debug sits above the table (its trace reads the table's
    # fields): the run assembly hands it down, imported only by a run that
    # debugs.
    if asm.attach_debug is None:
        raise TenderError("the debug tools are not available to this run")
    session = asm.attach_debug(cfg, vm.backend.debug_view, vm.mem, asm.diag)
    asm.closers.append(session.close)
    asm.state["gdb"] = session


def _halt(asm: Assembly, vm: RunningVm, h: Halt) -> None:
    for hook in asm.state["gdb"].halt_hooks:
        hook(vm, h)


def _exit(asm: Assembly, vm: RunningVm, e: Any) -> bool:
    return any([hook(vm, e) for hook in asm.state["gdb"].exit_hooks])


def _around(asm: Assembly, vm: RunningVm, table: dict[int, Handler], loop: Loop) -> Outcome:
    out: Outcome = asm.state["gdb"].run(vm, table, loop)
    return out


GDB = Module(
    name="gdb",
    usage=(
        "    [ --gdb ] (wait for a gdb connection before the first instruction)",
        "    [ --gdb-port=1234 ] (TCP port of the gdb server on localhost)",
    ),
    options=(
        Option("--gdb", _gdb),
        Option("(?s)--gdb-port=(.*)", _gdb_port),
    ),
    finish=_gdb_finish,
    setup=_setup,
    halt=_halt,
    exit=_exit,
    around=_around,
)

DUMPCORE = Module(
    name="dumpcore",
    usage=("    [ --dumpcore=DIR ] (write a core file to DIR when the guest aborts)",),
    options=(Option("(?s)--dumpcore=(.+)", setter("dumpcore", str)),),
)
