"""Pure: the solo5-hvt command-line grammar (spec 7) -> VmConfig.

Two passes, as solo5-hvt: pass 1 finds KERNEL (and --help/--version);
pass 2 needs the guest's manifest to know which --block:NAME / --net:NAME
are valid. The options themselves are the module table's (tender/modules/)."""

from __future__ import annotations

import os

from tender.config import VmConfig
from tender.errors import TenderError, UsageError
from tender.manifest import Manifest
from tender.modules.options import ArgState, Module, invalid
from tender.record import record, replace


def usage(prog: str) -> str:
    """solo5-hvt's usage text; the module lines come from the module table."""
    from tender import modules

    return f"""\
usage: {prog} [ CORE OPTIONS ] [ MODULE OPTIONS ] [ -- ] KERNEL [ ARGS ]
KERNEL is the filename of the unikernel to run.
ARGS are optional arguments passed to the unikernel.
Core options:
  [ --mem=512 ] (guest memory in MB)
    --help (display this help)
    --version (display version information)
Compiled-in modules: {modules.compiled_in()}
Compiled-in module options:
{modules.option_lines(True)}pytender options:
{modules.option_lines(False)}"""


@record(frozen=True)
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


def pass2(p1: Pass1, manifest: Manifest, table: tuple[Module, ...] | None = None) -> VmConfig:
    """Options before KERNEL -> VmConfig, or the first option error."""
    config, error = pass2_prefix(p1, manifest, table)
    if error is not None:
        raise error
    return config


def pass2_prefix(p1: Pass1, manifest: Manifest,
                 table: tuple[Module, ...] | None = None) -> tuple[VmConfig, TenderError | None]:
    """Options before KERNEL -> VmConfig, each read by the module-table
    option that matches it. Later options win; repeating --block/--net
    re-attaches, as solo5-hvt. On a bad option, returns the configuration of
    the options before it with the error: solo5-hvt opens devices while it
    parses, so their errors come first. `table`: the module table (default
    modules.TABLE)."""
    from tender import modules

    rows = modules.TABLE if table is None else table
    st = ArgState(manifest)
    grammar = modules.options(rows)
    error: TenderError | None = None
    try:
        for arg in p1.options:
            if arg == "--":
                break
            for opt in grammar:
                if m := opt.accepts(arg):
                    opt.apply(st, arg, m)
                    break
            else:
                raise invalid(arg)
    except TenderError as exc:
        error = exc     # the state holds exactly the options before it
    for finish in modules.finishers(rows):
        finish(st)
    block_specs = tuple(
        replace(b, block_size=st.sectors.get(b.name, b.block_size)) for b in st.blocks.values()
    )
    net_specs = tuple(replace(n, mac=st.macs.get(n.name)) for n in st.nets.values())
    return VmConfig(
        kernel=p1.kernel,
        attach_order=tuple(st.order),
        args=tuple(os.fsencode(a) for a in p1.args),
        blocks=block_specs,
        nets=net_specs,
        **st.config,
    ), error
