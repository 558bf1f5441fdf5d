"""The debug modules' declarations: gdb, dumpcore (set up by tender.debug)."""

import re

from tender.errors import TenderError
from tender.modules.options import ArgState, Match, Module, Option, setter

_PORT = r"--gdb-port=(\d+)"


def _gdb(st: ArgState, _arg: str, _m: Match) -> None:
    st.extra["gdb"] = True


def _gdb_port(st: ArgState, arg: str, _m: Match) -> None:
    m = re.fullmatch(_PORT, arg)
    if m is None or int(m[1]) > 65535:
        raise TenderError("Malformed argument to --gdb-port")
    st.extra["gdb_port"] = int(m[1])


def _gdb_finish(st: ArgState) -> None:
    # --gdb-port alone does not start the stub (solo5-hvt).
    st.config["gdb_port"] = st.extra.get("gdb_port", 1234) if st.extra.get("gdb") else None


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
)

DUMPCORE = Module(
    name="dumpcore",
    usage=("    [ --dumpcore=DIR ] (write a core file to DIR when the guest aborts)",),
    options=(Option("(?s)--dumpcore=(.+)", setter("dumpcore", str)),),
)
