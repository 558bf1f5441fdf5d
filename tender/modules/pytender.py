"""pytender's own options (not a solo5-hvt module: no "Compiled-in" entry)."""

from __future__ import annotations

from tender import abi
from tender.config import BlockSpec, HandlerMode, NetSpec
from tender.modules.options import ArgState, Match, Module, Option, only, setter

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from typing import Literal


def _disk(st: ArgState, arg: str, m: Match) -> None:
    name = only(st, abi.DeviceType.BLOCK_BASIC, arg)
    st.blocks[name] = BlockSpec(name, m[1])
    st.order[name] = None


def _net(st: ArgState, arg: str, m: Match) -> None:
    name = only(st, abi.DeviceType.NET_BASIC, arg)
    st.nets[name] = NetSpec(name, m[1])
    st.order[name] = None


def _ring_offer(v: str) -> bool | Literal["auto"]:
    return "auto" if v == "auto" else v == "on"


MODULE = Module(
    name="pytender",
    usage=(
        "    [ --disk=PATH ] (attach PATH to the guest's only block device)",
        "    [ --net=IFACE ] (attach IFACE to the guest's only network device)",
        "    [ --handlers=native|python ] (native C fast path, or the Python reference)",
        "    [ --trace=FILE ] (one JSON line per hypercall and exit)",
        "    [ --net-ring=on|off ] (offer the net ring to the guest; default on)",
        "    [ --script=FILE.py ] (a Python file defining intercept = {Hypercall.X: fn})",
    ),
    options=(
        Option("(?s)--disk=(.+)", _disk),
        Option("(?s)--net=(.+)", _net),
        Option("--handlers=(native|python)", setter("handlers", HandlerMode)),
        Option("(?s)--trace=(.+)", setter("trace", str)),
        Option("--net-ring=(on|off|auto)", setter("net_ring", _ring_offer)),
        Option("(?s)--script=(.+)", setter("script", str)),
    ),
    compiled_in=False,
)
