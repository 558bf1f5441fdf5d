"""Apply a pure CpuPlan / CPU set-up to a KVM vCPU (spec 3.6, 3.7)."""

from __future__ import annotations

from tender.config import CpuidMode
from tender.errors import KvmError
from tender.kvm import ioctls as k
from tender.kvm.system import Kvm
from tender.kvm.vcpu import VcpuFd
from tender.layout import CpuPlan, Seg


def _seg(dst: k.Struct, src: Seg) -> None:
    for name in ("selector", "base", "limit", "type", "present", "dpl", "db", "s", "l", "g",
                 "avl", "unusable"):
        setattr(dst, name, getattr(src, name))


def setup_cpuid(kvm: Kvm, vcpu: VcpuFd, mode: CpuidMode = CpuidMode.HOST) -> None:
    """KVM's supported CPUID: unchanged (HOST, as solo5-hvt) or through the
    unikernel filter (tender/kvm/cpuid.py)."""
    table = kvm.supported_cpuid()
    if mode is CpuidMode.FILTERED:
        from tender.kvm.cpuid import filter_table

        table = filter_table(table)
    vcpu.set_cpuid2(table)


def tsc_hz(kvm: Kvm, vcpu: VcpuFd) -> int:
    if kvm.check_extension(k.CAP_GET_TSC_KHZ) <= 0:
        raise KvmError("KVM: host does not support KVM_CAP_GET_TSC_KHZ")
    return vcpu.tsc_khz() * 1000


def setup_sregs(vcpu: VcpuFd, plan: CpuPlan) -> None:
    s = k.Sregs()
    p = plan.sregs
    _seg(s.cs, p.cs)
    for reg in (s.ss, s.ds, s.es, s.fs, s.gs):
        _seg(reg, p.data)
    _seg(s.tr, p.tr)
    _seg(s.ldt, p.ldt)
    s.gdt.base, s.gdt.limit = p.gdt_base, p.gdt_limit
    s.cr0, s.cr3, s.cr4, s.efer = p.cr0, p.cr3, p.cr4, p.efer
    vcpu.set_sregs(s)


def setup_regs(vcpu: VcpuFd, plan: CpuPlan) -> None:
    r = k.Regs()
    r.rip, r.rsp, r.rdi, r.rflags = plan.rip, plan.rsp, plan.rdi, plan.rflags
    vcpu.set_regs(r)
