"""net: NET_WRITE / NET_READ, with a net device attached."""

from tender import abi
from tender.config import NetSpec
from tender.hypercalls.net import net_read, net_write
from tender.modules.options import (
    ArgState,
    Call,
    Match,
    Module,
    Option,
    TraceFields,
    When,
    declared,
    name_pattern,
)

_NAMES = ("handle", "data", "len", "ret")



def _net(st: ArgState, arg: str, m: Match) -> None:
    declared(st, m[1], abi.DeviceType.NET_BASIC, arg)
    st.nets[m[1]] = NetSpec(m[1], m[2])
    st.order[m[1]] = None


def _mac(st: ArgState, arg: str, m: Match) -> None:
    declared(st, m[1], abi.DeviceType.NET_BASIC, arg)
    st.macs[m[1]] = bytes(int(x, 16) for x in m[2].split(":"))


MODULE = Module(
    name="net",
    usage=(
        "    --net:NAME=IFACE | @NN (attach tap at IFACE or at open fd NN as network NAME)",
        "    [ --net-mac:NAME=HWADDR ] (set HWADDR for network NAME)",
    ),
    options=(
        Option(name_pattern("net", r"\S{1,19}"), _net),
        Option(name_pattern("net-mac", r"(?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}"), _mac),
    ),
    calls=(
        Call(abi.Hypercall.NET_WRITE, net_write, True, TraceFields(abi.NET, _NAMES, ("ret",))),
        Call(abi.Hypercall.NET_READ, net_read, True,
             TraceFields(abi.NET, _NAMES, ("len", "ret"))),
    ),
    when=When.NET,
)
