"""Is /dev/kvm hardware-assisted (VT-x / AMD-V) or a software KVM (kvm_pvm)?

The net ring trades VM exits for guest instructions (spec 5.3: the guest
copies every frame into a slot buffer and keeps the ring's indices). Where
guest instructions run at native speed and an exit is dear, that pays; under
kvm_pvm on this project's host a guest instruction costs ~1 us and an exit
~18 us, so the copy of one 1400-byte frame alone costs as much as ten exits
(bench/README.md, "Net ring: where the time goes"). `--net-ring=auto` asks
this module.

What is detected, not assumed: a hardware KVM needs the CPU's VMX or SVM
feature, which the host kernel lists in /proc/cpuinfo, and its vendor module
(kvm_intel, kvm_amd). kvm_pvm runs on CPUs without either (e.g. inside a
cloud VM) and shows up as its own module. Anything else is UNKNOWN."""

from __future__ import annotations

import enum
import os

HW_FLAGS = frozenset({"vmx", "svm"})
HW_MODULES = frozenset({"kvm_intel", "kvm_amd"})
SOFTWARE_MODULES = frozenset({"kvm_pvm"})


class Assist(enum.Enum):
    HARDWARE = "hardware"     # VT-x / AMD-V
    SOFTWARE = "software"     # kvm_pvm: guest runs without virtualization extensions
    UNKNOWN = "unknown"


def classify(cpu_flags: frozenset[str], modules: frozenset[str]) -> Assist:
    """Pure: the verdict for a CPU flag set and the loaded module names."""
    hw_cpu = bool(cpu_flags & HW_FLAGS)
    hw_mod = bool(modules & HW_MODULES)
    sw_mod = bool(modules & SOFTWARE_MODULES)
    if sw_mod and not hw_mod:
        return Assist.SOFTWARE
    if hw_mod and hw_cpu and not sw_mod:
        return Assist.HARDWARE
    if not hw_cpu and not hw_mod and "kvm" in modules:
        # No extensions, yet a KVM: whatever serves /dev/kvm is software.
        return Assist.SOFTWARE
    return Assist.UNKNOWN      # both kinds loaded, or nothing to go by


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """Pure: the first `flags` line of /proc/cpuinfo text (x86)."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def probe(proc: str = "/proc", sys_module: str = "/sys/module") -> Assist:
    """This host's verdict; UNKNOWN when the files cannot be read."""
    try:
        with open(os.path.join(proc, "cpuinfo"), encoding="ascii", errors="replace") as f:
            # The first CPU's block is enough; cpuinfo of a big host is large.
            text = f.read(1 << 16)
        modules = frozenset(os.listdir(sys_module))
    except OSError:
        return Assist.UNKNOWN
    return classify(cpu_flags(text), modules)
