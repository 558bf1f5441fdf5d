"""The module table (tender/modules/) and what is derived from it."""

from __future__ import annotations

import re

from tender import abi, argv, modules
from tender.debug import trace
from tender.hypercalls.block import block_read, block_write
from tender.hypercalls.clock import walltime
from tender.hypercalls.console import puts
from tender.hypercalls.net import net_read, net_write
from tender.hypercalls.poll import poll
from tender.manifest import Entry, Manifest, reserved_entry
from tender.modules import Call, Module, TraceFields, When, dispatch_table
from tender.modules.options import ArgState, Option
from tender.native import NATIVE_CAPABLE

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
