"""core: the clock, the console and poll (always registered)."""

from tender import abi
from tender.hypercalls.clock import walltime
from tender.hypercalls.console import puts
from tender.hypercalls.poll import poll
from tender.layout import parse_mem_arg
from tender.modules.options import Call, Module, Option, TraceFields, setter

MODULE = Module(
    name="core",
    # --help and --version are pass 1's (tender.argv.pass1).
    options=(Option(r"(?s)--mem=(.*)", setter("mem", parse_mem_arg)),),
    calls=(
        Call(abi.Hypercall.WALLTIME, walltime, True,
             TraceFields(abi.WALLTIME, ("nsecs",), ("nsecs",), ("nsecs",))),
        Call(abi.Hypercall.PUTS, puts, True, TraceFields(abi.PUTS, ("data", "len"))),
        Call(abi.Hypercall.POLL, poll, True,
             TraceFields(abi.POLL, ("timeout_nsecs", "ready_set", "ret"),
                         ("ready_set", "ret"), ("timeout_nsecs",))),
    ),
)
