"""The module table (tender/modules/) and what is derived from it."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest
from elfcraft import Guest, abi_note, mft_note, mft_payload

from tender import abi, argv, elf, modules
from tender.config import BlockSpec, VmConfig
from tender.debug import trace
from tender.errors import DeviceError, TenderError
from tender.hypercalls.block import block_read, block_write
from tender.hypercalls.clock import walltime
from tender.hypercalls.console import puts
from tender.hypercalls.context import Context
from tender.hypercalls.halt import Halt
from tender.hypercalls.net import net_read, net_write
from tender.hypercalls.poll import poll
from tender.manifest import Entry, Manifest, reserved_entry
from tender.modules import Call, Module, TraceFields, When, dispatch_table
from tender.modules.hooks import Assembly, Booted
from tender.modules.options import ArgState, Option
from tender.native import NATIVE_CAPABLE
from tender.session import RunningVm
from tender.vm import Tender, load_guest

H = abi.Hypercall

# The usage text as it was written out by hand before the table existed.
USAGE = """\
usage: PROG [ CORE OPTIONS ] [ MODULE OPTIONS ] [ -- ] KERNEL [ ARGS ]
KERNEL is the filename of the unikernel to run.
ARGS are optional arguments passed to the unikernel.
Core options:
  [ --mem=512 ] (guest memory in MB)
    --help (display this help)
    --version (display version information)
Compiled-in modules: core block net gdb dumpcore\x20
Compiled-in module options:
    --block:NAME=PATH (attach block device/file at PATH as block storage NAME)
    [ --block-sector-size:NAME=SECTORSIZE ] (sector size of block storage NAME, default 512)
    --net:NAME=IFACE | @NN (attach tap at IFACE or at open fd NN as network NAME)
    [ --net-mac:NAME=HWADDR ] (set HWADDR for network NAME)
    [ --gdb ] (wait for a gdb connection before the first instruction)
    [ --gdb-port=1234 ] (TCP port of the gdb server on localhost)
    [ --dumpcore=DIR ] (write a core file to DIR when the guest aborts)
pytender options:
    [ --disk=PATH ] (attach PATH to the guest's only block device)
    [ --net=IFACE ] (attach IFACE to the guest's only network device)
    [ --handlers=native|python ] (native C fast path, or the Python reference)
    [ --trace=FILE ] (one JSON line per hypercall and exit)
    [ --net-ring=on|off ] (offer the net ring to the guest; default on)
    [ --script=FILE.py ] (a Python file defining intercept = {Hypercall.X: fn})
    [ --wx=on|off ] (W^X guest page tables, read-only tender memory; default on)
    [ --cpuid=filtered|host ] (CPUID table the guest sees; default filtered)
    [ --msr=filtered|host ] (refuse guest MSRs but the allowlist; default filtered)
    [ --metrics-port=PORT ] (serve Prometheus /metrics on 127.0.0.1:PORT)
"""


def test_usage_is_derived_byte_for_byte() -> None:
    assert argv.usage("PROG") == USAGE


def test_dispatch_table_is_derived_per_attached_device() -> None:
    core = {H.WALLTIME: walltime, H.PUTS: puts, H.POLL: poll}
    block = {H.BLOCK_WRITE: block_write, H.BLOCK_READ: block_read}
    net = {H.NET_WRITE: net_write, H.NET_READ: net_read}
    assert dispatch_table(False, False) == core
    assert dispatch_table(True, False) == {**core, **block}
    assert dispatch_table(False, True) == {**core, **net}
    assert dispatch_table(True, True) == {**core, **block, **net}
    assert H.HALT not in dispatch_table(True, True)    # the run loop's own


def test_native_mask_and_trace_fields_are_derived() -> None:
    assert NATIVE_CAPABLE == {H.WALLTIME, H.PUTS, H.POLL, H.BLOCK_WRITE, H.BLOCK_READ,
                              H.NET_WRITE, H.NET_READ}
    assert trace._LAYOUT[H.POLL] == (abi.POLL, ("timeout_nsecs", "ready_set", "ret"),
                                     ("ready_set", "ret"), ("timeout_nsecs",))
    assert trace._LAYOUT[H.NET_READ][2] == ("len", "ret")
    assert set(trace._LAYOUT) == set(dispatch_table(True, True))


def test_a_new_module_is_one_entry() -> None:
    """A module with one hypercall and one option line shows up in every
    derived view, and only while its device kind is attached."""
    def rng_on(st: ArgState, _arg: str, _m: object) -> None:
        st.extra["rng"] = True

    extra = Module(
        name="rng",
        usage=("    [ --rng ] (an entropy device)",),
        options=(Option(re.compile("--rng"), rng_on),),
        calls=(Call(9, walltime, False, TraceFields(abi.WALLTIME, ("nsecs",))),),
        when=When.BLOCK,
    )
    table = (*modules.TABLE[:3], extra, *modules.TABLE[3:])
    assert modules.compiled_in(table) == "core block net rng gdb dumpcore "
    assert "    [ --rng ] (an entropy device)\n" in modules.option_lines(True, table)
    assert modules.dispatch(True, False, table)[9] is walltime
    assert 9 not in modules.dispatch(False, True, table)
    assert 9 not in modules.native_capable(table)
    assert modules.trace_fields(table)[9].names == ("nsecs",)
    st = ArgState(Manifest(()))
    for arg in ("--mem=8", "--rng"):
        opt = next(o for o in modules.options(table) if o.accepts(arg))
        opt.apply(st, arg, opt.accepts(arg))  # type: ignore[arg-type]
    assert st.extra == {"rng": True} and st.config == {"mem": 8 << 20}


def test_argv_grammar_is_the_tables() -> None:
    """Every option the grammar reads is one module's; no two read one arg."""
    mft = Manifest((reserved_entry(), Entry("d", abi.DeviceType.BLOCK_BASIC),
                    Entry("n", abi.DeviceType.NET_BASIC)))
    args = ["--mem=8", "--block:d=/x", "--block-sector-size:d=4096", "--net:n=tap0",
            "--net-mac:n=02:00:00:00:00:01", "--gdb", "--gdb-port=99", "--dumpcore=/c",
            "--disk=/y", "--net=tap1", "--handlers=python", "--trace=/t", "--net-ring=off",
            "--script=s.py", "--wx=off", "--cpuid=host", "--msr=host",
            "--metrics-port=9100"]
    for arg in args:
        assert sum(1 for o in modules.options() if o.accepts(arg)) == 1, arg
    cfg = argv.pass2(argv.Pass1("run", tuple(args), "k"), mft)
    assert (cfg.mem, cfg.gdb_port, cfg.dumpcore, cfg.trace, cfg.net_ring, cfg.script) == (
        8 << 20, 99, "/c", "/t", False, "s.py")
    assert [(b.path, b.block_size) for b in cfg.blocks] == [("/y", 4096)]
    assert [(n.iface, n.mac) for n in cfg.nets] == [("tap1", bytes([2, 0, 0, 0, 0, 1]))]


# --- a made-up device module, end to end on KVM ------------------------------

TICK_TYPE = 3   # a device type no other module declares


@dataclasses.dataclass(frozen=True)
class TickSpec:
    name: str
    fd: int


@dataclasses.dataclass
class TickDevice:
    name: str
    fd: int

    def close(self) -> None:
        os.close(self.fd)


def tick_module(seen: list[str]) -> Module:
    """One option (--tick:NAME=FD), one hypercall, one poll fd, one halt
    hook: everything a device module declares, in one entry. Each hook
    writes down that it ran in `seen`."""
    def option(st: ArgState, _arg: str, m: re.Match[str]) -> None:
        st.config["devices"] = (*st.config.get("devices", ()), TickSpec(m[1], int(m[2])))
        st.order[m[1]] = None

    def attach(asm: Assembly, spec: TickSpec) -> None:
        handle = asm.manifest.handle_of(spec.name, TICK_TYPE)
        assert handle is not None
        dev = TickDevice(spec.name, os.dup(spec.fd))
        asm.closers.append(dev.close)
        asm.add("tick", handle, dev)
        asm.state["tick"] = dev     # its halt hook takes part in the run
        seen.append(f"attach {spec.name} as handle {handle}")

    def setup(asm: Assembly, _vm: Booted) -> None:
        for handle in asm.of("tick"):
            entry = asm.manifest.entries[handle]
            asm.manifest = asm.manifest.replace(handle, dataclasses.replace(entry, attached=True))
            seen.append("setup")

    def tick(ctx: Context, gpa: int) -> None:
        assert ctx.poller is not None and list(ctx.devices["tick"]) == [1]
        seen.append("tick")
        ctx.mem.write_struct(abi.WALLTIME, gpa, 0x5A)

    def halt(asm: Assembly, _vm: RunningVm, h: Halt) -> None:
        seen.append(f"halt {h.status:#x} by {asm.state['tick'].name}")

    return Module(
        name="tick",
        usage=("    [ --tick:NAME=FD ] (a tick device on open fd FD)",),
        options=(Option(r"--tick:([A-Za-z0-9]{1,67})=(\d+)", option),),
        # The ABI has no free hypercall number (spec: ports 0x501-0x508), so
        # the made-up one takes BLOCK_WRITE's: the run has no block device,
        # so block's calls are not registered (When.BLOCK).
        calls=(Call(H.BLOCK_WRITE, tick, False, TraceFields(abi.WALLTIME, ("value",))),),
        when=When.DEVICE,
        devices=lambda cfg: tuple(d for d in cfg.devices if isinstance(d, TickSpec)),
        attach=attach,
        setup=setup,
        poll=lambda asm: {h: d.fd for h, d in asm.of("tick").items()},
        halt=halt,
    )


def tick_guest(path: Path) -> str:
    """A crafted guest: the tick hypercall, POLL (50 ms), then HALT with
    status = POLL's ready_set + the value the tick handler wrote."""
    from elfcraft import DATA_OFF, TEXT_OFF

    code = bytes.fromhex(
        "66ba0405" "b800101000" "ef"          # out 0x504 (tick), struct at 0x101000
        "66ba0305" "b800111000" "ef"          # out 0x503 (POLL), struct at 0x101100
        "8b0425" "08111000"                   # mov eax, [ready_set]
        "030425" "00101000"                   # add eax, [tick value]
        "890425" "08121000"                   # mov [exit_status], eax
        "66ba0805" "b800121000" "ef"          # out 0x508 (HALT), struct at 0x101200
        "f4ebfd"                              # hlt; jmp .
    )
    img = bytearray(Guest(notes=[abi_note(), mft_note(mft_payload([("tick0", TICK_TYPE)]))])
                    .build())
    img[TEXT_OFF:TEXT_OFF + len(code)] = code
    img[DATA_OFF + 0x100:DATA_OFF + 0x118] = abi.POLL.pack(50_000_000, 0, 0)
    img[DATA_OFF + 0x200:DATA_OFF + 0x210] = abi.HALT.pack(0, 0)
    path.write_bytes(bytes(img))
    return str(path)


@pytest.mark.parametrize("readable", [True, False])
def test_a_new_device_module_runs_end_to_end(kvm: None, handlers: str, tmp_path: Path,
                                              readable: bool) -> None:
    """Adding one module entry is enough for a device kind: its option is
    parsed, its device attached and set up, its hypercall served (by Python,
    in both handler modes), its fd in POLL's wait set and its halt hook run."""
    seen: list[str] = []
    table = (*modules.TABLE[:3], tick_module(seen), *modules.TABLE[3:])
    kernel = tick_guest(tmp_path / "tick.hvt")
    r, w = os.pipe()
    try:
        if readable:
            os.write(w, b"!")
        source, _notes, manifest = load_guest(VmConfig(kernel))
        assert isinstance(source, elf.KernelFile)
        source.close()
        p1 = argv.Pass1("run", ("--mem=8", f"--tick:tick0={r}", handlers),
                        kernel)
        cfg = argv.pass2(p1, manifest, table)
        assert cfg.devices == (TickSpec("tick0", r),)
        tender = Tender(cfg, table=table)
        out = tender.run()
    finally:
        os.close(r)
        os.close(w)
    ready = 1 << 1 if readable else 0     # tick0 is handle 1: POLL waited on its fd
    assert out.status == ready + 0x5A, out
    assert seen == ["attach tick0 as handle 1", "setup", "tick",
                    f"halt {ready + 0x5A:#x} by tick0"]
    # Python served both the tick call and POLL (C's POLL sees only nets).
    assert out.hypercalls == {"block_write": 1, "poll": 1, "halt": 1}
    stats = tender.stats()
    assert stats.devices["tick0"].kind == "tick"
    assert "    [ --tick:NAME=FD ] (a tick device on open fd FD)\n" in \
        modules.option_lines(True, table)


@pytest.mark.parametrize("first", ["tick0", "storage"])
def test_every_modules_devices_open_in_command_line_order(tmp_path: Path, first: str) -> None:
    """A made-up module's device and a block device open in the order of
    the command line (spec 1: the first bad device is the one reported)."""
    seen: list[str] = []
    table = (*modules.TABLE[:3], tick_module(seen), *modules.TABLE[3:])
    img = Guest(notes=[abi_note(), mft_note(mft_payload([("storage", 1), ("tick0", TICK_TYPE)]))])
    kernel = tmp_path / "two.hvt"
    kernel.write_bytes(img.build())
    r, w = os.pipe()
    try:
        order = (first, *({"tick0", "storage"} - {first}))
        cfg = VmConfig(str(kernel), blocks=(BlockSpec("storage", str(tmp_path / "none.img")),),
                       devices=(TickSpec("tick0", r),), attach_order=order)
        with pytest.raises(DeviceError, match="Could not open block device"):
            Tender(cfg, table=table).open_devices()
    finally:
        os.close(r)
        os.close(w)
    assert seen == (["attach tick0 as handle 2"] if first == "tick0" else [])


def test_module_hooks_take_part_only_with_state_in_table_order() -> None:
    ran: list[str] = []

    def row(name: str, early: bool) -> Module:
        def claim(_a: Assembly, _vm: RunningVm, _e: object) -> bool:
            ran.append(f"exit {name}")
            return True

        return Module(name=name, halt=lambda _a, _vm, _h: ran.append(name), halt_early=early,
                      exit=claim)

    table = (row("a", False), row("b", False), row("c", True), row("d", False))
    asm = Assembly(VmConfig("k"), Manifest(()), print, [])
    asm.state.update(b=1, c=1, d=1)
    early, late, exits = modules.run_hooks(asm, table)
    for hook in (*early, *late):
        hook(None, None)    # type: ignore[arg-type]
    assert ran == ["c", "b", "d"]
    assert [x(None, None) for x in exits] == [True] * 3    # type: ignore[arg-type]
    assert ran[3:] == ["exit b", "exit c", "exit d"]


def test_poll_is_native_only_while_every_polled_fd_is_a_net_device() -> None:
    calls = modules.registered(frozenset({"net"}))
    assert modules.native_calls(calls, {1: 7}, {1: object()}) == {
        H.WALLTIME, H.PUTS, H.POLL, H.NET_WRITE, H.NET_READ}
    # Another module's fd (handle 2): C's POLL would not wait on it, and
    # without a native POLL the run offers no ring (vm: ring_ok).
    assert H.POLL not in modules.native_calls(calls, {1: 7, 2: 8}, {1: object()})
    tick = tick_module([])
    assert modules.registered(frozenset({"tick"}), (*modules.TABLE, tick))[H.BLOCK_WRITE] \
        is tick.calls[0]
    assert H.BLOCK_WRITE not in modules.native_calls(
        modules.registered(frozenset({"tick"}), (*modules.TABLE, tick)), {}, {})


def test_a_hypercall_number_is_registered_once_per_run() -> None:
    table = (*modules.TABLE, tick_module([]))
    with pytest.raises(TenderError, match=r"^hypercall 4 is registered by both module block "
                                          r"and module tick$"):
        modules.registered(frozenset({"block", "tick"}), table)
