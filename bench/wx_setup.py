#!/usr/bin/env python3
"""In-process cost of issue 9's set-up steps, which whole-process boot times
on a shared host cannot resolve: W^X page tables vs the spec 3.3 ones, the
CPUID filter, and a VM with the MSR filter (and read-only low memslot) vs
without. Medians of N repetitions, printed, never asserted.

    .venv/bin/python bench/wx_setup.py [N]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tender import elf, layout, wx
from tender.kvm import Kvm, cpuid, msr
from tender.kvm.memslots import map_ram
from tender.memory import GuestMemory

HELLO = Path(__file__).resolve().parent.parent / "guests" / "build" / "hello.hvt"


def median_us(fn: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(times)


def vm_setup(kvm: Kvm, protected: bool) -> None:
    vm = kvm.create_vm()
    mem = GuestMemory(64 << 20, 64 << 20)
    try:
        if protected:
            msr.install(vm)
        map_ram(vm, mem, wx.LOW_MEMORY[1] if protected else 0)
        vm.create_vcpu(0).close()
    finally:
        mem.close()
        vm.close()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    src = elf.open_kernel(str(HELLO))
    wxm = wx.wx_map(elf.plan_load(src, str(HELLO), 64 << 20).segments)
    kvm = Kvm()
    table = kvm.supported_cpuid()
    pairs = [
        ("page tables 64 MiB: spec 3.3 / W^X",
         lambda: layout.page_tables(64 << 20), lambda: layout.page_tables(64 << 20, wxm)),
        ("page tables 4 GiB: spec 3.3 / W^X",
         lambda: layout.page_tables(4 << 30), lambda: layout.page_tables(4 << 30, wxm)),
        ("CPUID table: as is / filtered", lambda: bytearray(table),
         lambda: cpuid.filter_table(table)),
        ("VM+memslot+vCPU: plain / MSR filter+RO slot",
         lambda: vm_setup(kvm, False), lambda: vm_setup(kvm, True)),
    ]
    print(f"issue 9 set-up costs, in process, median of {n} (us); hello.hvt: {wxm}")
    print(f"  {'':<46} {'without':>9} {'with':>9} {'delta':>9}")
    for label, off, on in pairs:
        a, b = median_us(off, n), median_us(on, n)
        print(f"  {label:<46} {a:9.1f} {b:9.1f} {b - a:+9.1f}")
    kvm.close()


if __name__ == "__main__":
    main()
