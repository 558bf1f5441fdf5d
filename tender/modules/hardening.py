"""Issue 9's guest hardening options (pytender's, not solo5-hvt's): W^X
paging, the CPUID filter and the MSR filter; set up by the backend."""

from tender.config import CpuidMode
from tender.modules.options import Module, Option, setter

MODULE = Module(
    name="hardening",
    usage=(
        "    [ --wx=on|off ] (W^X guest page tables, read-only tender memory; default on)",
        "    [ --cpuid=filtered|host ] (CPUID table the guest sees; default filtered)",
        "    [ --msr=filtered|host ] (refuse guest MSRs but the allowlist; default filtered)",
    ),
    options=(
        Option("--wx=(on|off)", setter("wx", lambda v: v == "on")),
        Option("--cpuid=(filtered|host)", setter("cpuid", CpuidMode)),
        Option("--msr=(filtered|host)", setter("msr_filter", lambda v: v == "filtered")),
    ),
    compiled_in=False,
)
