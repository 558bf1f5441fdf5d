"""The kvmclock MSR numbers the MSR filter refuses (tender/kvm/msr.py) are
KVM's paravirtual ABI: held to <asm/kvm_para.h>, as test_kvm_header holds
the rest of KVM's numbers to <linux/kvm.h>. No KVM needed."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tender.kvm import msr

NAMES = ("MSR_KVM_WALL_CLOCK", "MSR_KVM_SYSTEM_TIME", "MSR_KVM_WALL_CLOCK_NEW",
         "MSR_KVM_SYSTEM_TIME_NEW")


def test_kvmclock_msrs_match_the_header(tmp_path: Path) -> None:
    src = tmp_path / "probe.c"
    src.write_text("#include <stdio.h>\n#include <asm/kvm_para.h>\nint main(void) {\n"
                   + "".join(f'printf("%u\\n", (unsigned)({n}));\n' for n in NAMES)
                   + "return 0; }\n")
    subprocess.run(["gcc", "-Wall", "-Werror", "-o", str(tmp_path / "probe"), str(src)],
                   check=True)
    out = subprocess.run([str(tmp_path / "probe")], capture_output=True, text=True, check=True)
    assert tuple(int(v) for v in out.stdout.split()) == msr.KVMCLOCK_MSRS
