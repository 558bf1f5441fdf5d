"""net: NET_WRITE / NET_READ, with a net device attached."""

from tender import abi
from tender.config import NetSpec, VmConfig
from tender.hypercalls.net import net_read, net_write
from tender.modules.hooks import Assembly, Booted, Started, declared_handle, loading
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


def _specs(cfg: VmConfig) -> tuple[NetSpec, ...]:
    return cfg.nets


def _attach(asm: Assembly, spec: NetSpec) -> None:
    # The device module (and socket) loads only for a run that has a net device.
    with loading("the net device module"):
        from tender.devices.net import attach

    handle = declared_handle(asm.manifest, spec.name, abi.DeviceType.NET_BASIC)
    dev = attach(spec)
    asm.closers.append(dev.close)
    asm.add("net", handle, dev)


def _setup(asm: Assembly, _vm: Booted) -> None:
    for handle, dev in asm.of("net").items():
        from tender.devices.net import effective_mac
        dev.mac = effective_mac(dev)
        asm.manifest = asm.manifest.replace(
            handle, asm.manifest.entries[handle].net(dev.mac, dev.mtu, dev.fd)
        )


def _poll(asm: Assembly) -> dict[int, int]:
    return {h: d.fd for h, d in asm.of("net").items()}


def _start(asm: Assembly, run: Started) -> None:
    """Spec 5.1: offer HVT_FEATURE_RING_IO when the C I/O thread can serve
    it (`run.ring_ok`: only with native handlers, since the ring bypasses
    every hypercall, so nothing in Python could observe it)."""
    if not asm.of("net") or not run.ring_ok:
        return
    ring = run.start_ring()
    if ring is not None:
        asm.ring = ring
        asm.state["net"] = ring
        asm.closers.append(ring.stop)


def _halt(asm: Assembly, _vm: object, _h: object) -> None:
    # First halt hook, as upstream: the ring thread stops before dumpcore.
    asm.state["net"].stop()


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
    devices=_specs,
    attach=_attach,
    setup=_setup,
    poll=_poll,
    start=_start,
    halt=_halt,
    halt_early=True,
)
