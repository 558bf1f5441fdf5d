"""Pure: the solo5-hvt command-line grammar (spec 7) -> VmConfig.

Two passes, as solo5-hvt: pass 1 finds KERNEL (and --help/--version);
pass 2 needs the guest's manifest to know which --block:NAME / --net:NAME
are valid."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace

from tender import abi
from tender.config import BlockSpec, CpuidMode, HandlerMode, NetSpec, VmConfig
from tender.errors import TenderError, UsageError
from tender.layout import parse_mem_arg
from tender.manifest import Manifest

_NAME = r"([A-Za-z0-9]{1,67})"
RE_BLOCK = re.compile(rf"--block:{_NAME}=(\S{{1,4096}})")
RE_SECTOR = re.compile(rf"--block-sector-size:{_NAME}=(\S+)")
RE_NET = re.compile(rf"--net:{_NAME}=(\S{{1,19}})")
RE_MAC = re.compile(rf"--net-mac:{_NAME}=((?:[0-9A-Fa-f]{{2}}:){{5}}[0-9A-Fa-f]{{2}})")
RE_GDB_PORT = re.compile(r"--gdb-port=(\d+)")
RE_METRICS_PORT = re.compile(r"--metrics-port=(\d{1,5})")


# Each name followed by a space, as solo5-hvt prints them.
MODULES = "core block net gdb dumpcore "


def usage(prog: str) -> str:
    return f"""\
usage: {prog} [ CORE OPTIONS ] [ MODULE OPTIONS ] [ -- ] KERNEL [ ARGS ]
KERNEL is the filename of the unikernel to run.
ARGS are optional arguments passed to the unikernel.
Core options:
  [ --mem=512 ] (guest memory in MB)
    --help (display this help)
    --version (display version information)
Compiled-in modules: {MODULES}
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
    [ --script=FILE.py ] (a Python file defining intercept = {{Hypercall.X: fn}})
    [ --wx=on|off ] (W^X guest page tables, read-only tender memory; default on)
    [ --cpuid=filtered|host ] (CPUID table the guest sees; default filtered)
    [ --msr=filtered|host ] (refuse guest MSRs but the allowlist; default filtered)
    [ --metrics-port=PORT ] (serve Prometheus /metrics on 127.0.0.1:PORT)
"""


@dataclass(frozen=True)
class Pass1:
    """Where KERNEL is, or what to do instead of running."""

    action: str                  # "run", "help" or "version"
    options: tuple[str, ...] = ()
    kernel: str = ""
    args: tuple[str, ...] = ()


def pass1(argv: list[str] | tuple[str, ...]) -> Pass1:
    for i, arg in enumerate(argv):
        if arg == "--":
            if i + 1 >= len(argv):
                break
            return Pass1("run", tuple(argv[:i]), argv[i + 1], tuple(argv[i + 2 :]))
        if arg == "--help":
            return Pass1("help")
        if arg == "--version":
            return Pass1("version")
        if not arg.startswith("-"):
            return Pass1("run", tuple(argv[:i]), arg, tuple(argv[i + 1 :]))
    raise UsageError("Missing KERNEL operand")


def _invalid(arg: str, *detail: str) -> UsageError:
    return UsageError(f"Invalid option: `{arg}'", detail)


def _declared(manifest: Manifest, name: str, dtype: abi.DeviceType, arg: str) -> None:
    if manifest.handle_of(name, dtype) is None:
        raise _invalid(arg, f"Resource not declared in manifest: '{name}'")


def _only(manifest: Manifest, dtype: abi.DeviceType, arg: str) -> str:
    names = [e.name for _, e in manifest.devices() if e.type == dtype]
    if len(names) != 1:
        what = ", ".join(f"'{n}'" for n in names) or "none"
        raise UsageError(
            f"{arg.split('=')[0]} needs exactly one {dtype.name} device in the manifest "
            f"(it declares: {what}); use --{'block' if dtype == 1 else 'net'}:NAME=..."
        )
    return names[0]


def _mac(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


def pass2(p1: Pass1, manifest: Manifest) -> VmConfig:
    """Options before KERNEL -> VmConfig, or the first option error."""
    config, error = pass2_prefix(p1, manifest)
    if error is not None:
        raise error
    return config


def pass2_prefix(p1: Pass1, manifest: Manifest) -> tuple[VmConfig, TenderError | None]:
    """Options before KERNEL -> VmConfig. Later options win; repeating
    --block/--net re-attaches, as solo5-hvt. On a bad option, returns the
    configuration of the options before it with the error: solo5-hvt opens
    devices while it parses, so their errors come first."""
    mem = abi.DEFAULT_MEM
    blocks: dict[str, BlockSpec] = {}
    sectors: dict[str, int] = {}
    nets: dict[str, NetSpec] = {}
    macs: dict[str, bytes] = {}
    handlers = HandlerMode.NATIVE
    dumpcore: str | None = None
    gdb = False
    gdb_port = 1234
    trace: str | None = None
    net_ring = True
    script: str | None = None
    wx = True
    cpuid = CpuidMode.FILTERED
    msr_filter = True
    metrics_port: int | None = None
    order: dict[str, None] = {}     # device names, in command-line order
    error: TenderError | None = None
    try:
        for arg in p1.options:
            if arg == "--":
                break
            if arg.startswith("--mem="):
                mem = parse_mem_arg(arg[len("--mem="):])
            elif m := RE_BLOCK.fullmatch(arg):
                _declared(manifest, m[1], abi.DeviceType.BLOCK_BASIC, arg)
                blocks[m[1]] = BlockSpec(m[1], m[2])
                order[m[1]] = None
            elif m := RE_SECTOR.fullmatch(arg):
                size = int(m[2]) if m[2].isdigit() else -1
                if not abi.valid_block_size(size):
                    raise _invalid(
                        arg, "Block size must be a multiple of 2 greater than or equal 512"
                    )
                _declared(manifest, m[1], abi.DeviceType.BLOCK_BASIC, arg)
                sectors[m[1]] = size
            elif m := RE_NET.fullmatch(arg):
                _declared(manifest, m[1], abi.DeviceType.NET_BASIC, arg)
                nets[m[1]] = NetSpec(m[1], m[2])
                order[m[1]] = None
            elif m := RE_MAC.fullmatch(arg):
                _declared(manifest, m[1], abi.DeviceType.NET_BASIC, arg)
                macs[m[1]] = _mac(m[2])
            elif arg.startswith("--disk=") and len(arg) > len("--disk="):
                name = _only(manifest, abi.DeviceType.BLOCK_BASIC, arg)
                blocks[name] = BlockSpec(name, arg[len("--disk="):])
                order[name] = None
            elif arg.startswith("--net=") and len(arg) > len("--net="):
                name = _only(manifest, abi.DeviceType.NET_BASIC, arg)
                nets[name] = NetSpec(name, arg[len("--net="):])
                order[name] = None
            elif arg in ("--handlers=native", "--handlers=python"):
                handlers = HandlerMode(arg.split("=", 1)[1])
            elif arg.startswith("--dumpcore=") and len(arg) > len("--dumpcore="):
                dumpcore = arg[len("--dumpcore="):]
            elif arg == "--gdb":
                gdb = True
            elif arg.startswith("--gdb-port="):
                m = RE_GDB_PORT.fullmatch(arg)
                if m is None or int(m[1]) > 65535:
                    raise TenderError("Malformed argument to --gdb-port")
                gdb_port = int(m[1])
            elif arg in ("--net-ring=on", "--net-ring=off"):
                net_ring = arg == "--net-ring=on"
            elif arg in ("--wx=on", "--wx=off"):
                wx = arg == "--wx=on"
            elif arg in ("--cpuid=filtered", "--cpuid=host"):
                cpuid = CpuidMode(arg.split("=", 1)[1])
            elif arg in ("--msr=filtered", "--msr=host"):
                msr_filter = arg == "--msr=filtered"
            elif arg.startswith("--trace=") and len(arg) > len("--trace="):
                trace = arg[len("--trace="):]
            elif arg.startswith("--script=") and len(arg) > len("--script="):
                script = arg[len("--script="):]
            elif arg.startswith("--metrics-port="):
                m = RE_METRICS_PORT.fullmatch(arg)
                if m is None or int(m[1]) > 65535:
                    raise TenderError("Malformed argument to --metrics-port")
                metrics_port = int(m[1])
            else:
                raise _invalid(arg)
    except TenderError as exc:
        error = exc     # the state holds exactly the options before it
    block_specs = tuple(
        replace(b, block_size=sectors.get(b.name, b.block_size)) for b in blocks.values()
    )
    net_specs = tuple(replace(n, mac=macs.get(n.name)) for n in nets.values())
    return VmConfig(
        kernel=p1.kernel,
        attach_order=tuple(order),
        args=tuple(os.fsencode(a) for a in p1.args),
        mem=mem,
        blocks=block_specs,
        nets=net_specs,
        handlers=handlers,
        dumpcore=dumpcore,
        gdb_port=gdb_port if gdb else None,
        trace=trace,
        net_ring=net_ring,
        script=script,
        wx=wx,
        cpuid=cpuid,
        msr_filter=msr_filter,
        metrics_port=metrics_port,
    ), error
