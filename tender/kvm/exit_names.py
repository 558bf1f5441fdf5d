"""Names of kvm_run.exit_reason values (<linux/kvm.h> KVM_EXIT_*), lower case."""

from __future__ import annotations

EXIT_NAMES = (
    "unknown", "exception", "io", "hypercall", "debug", "hlt", "mmio", "irq_window_open",
    "shutdown", "fail_entry", "intr", "set_tpr", "tpr_access", "s390_sieic", "s390_reset",
    "dcr", "nmi", "internal_error", "osi", "papr_hcall", "s390_ucontrol", "watchdog",
    "s390_tsch", "epr", "system_event", "s390_stsi", "ioapic_eoi", "hyperv", "arm_nisv",
    "x86_rdmsr", "x86_wrmsr", "dirty_ring_full", "ap_reset_hold", "x86_bus_lock", "xen",
    "riscv_sbi", "riscv_csr", "notify", "loongarch_iocsr", "memory_fault",
)


def exit_name(reason: int, last: int) -> str:
    """The name of slot `reason` of a counter array whose slot `last` holds
    every reason >= last."""
    if reason >= last:
        return "other"
    return EXIT_NAMES[reason] if reason < len(EXIT_NAMES) else f"reason_{reason}"
