"""vmm(4) set-up calls for one hvt guest (BHYVE_SPEC 6 steps 5-20): memory
from a kernel memseg, then one ioctl per register and per descriptor, from
the same backend-neutral CpuPlan the KVM backend loads with two ioctls."""

from __future__ import annotations

import ctypes
import errno
import mmap
import struct

from tender.bhyve import ioc
from tender.bhyve import structs as s
from tender.bhyve.consts import PROT_ALL, VM_SYSMEM, Cap, Reg
from tender.bhyve.host import Host
from tender.bhyve.lifecycle import BhyveError
from tender.layout import CpuPlan, Seg


def access(seg: Seg) -> int:
    """The Intel VMCS access-rights word vmm takes (spec 4.5); bit 16 marks
    the segment unusable."""
    return (seg.type | seg.s << 4 | seg.dpl << 5 | seg.present << 7 | seg.avl << 12
            | seg.l << 13 | seg.db << 14 | seg.g << 15 | seg.unusable << 16)


def _call(host: Host, fd: int, request: int, arg: ctypes.Structure | ctypes.c_int32,
          what: str) -> bytearray:
    buf = bytearray(s.struct_bytes(arg))
    try:
        host.ioctl(fd, request, buf)
    except OSError as exc:
        raise BhyveError(f"{what}: {exc.strerror}") from None
    return buf


def set_register(host: Host, fd: int, reg: Reg, value: int) -> None:
    _call(host, fd, ioc.VM_SET_REGISTER, s.VmRegister(0, reg, value),
          f"VM_SET_REGISTER ({int(reg)})")


def set_descriptor(host: Host, fd: int, reg: Reg, base: int, limit: int, acc: int) -> None:
    _call(host, fd, ioc.VM_SET_SEGMENT_DESCRIPTOR, s.VmSegDesc(0, reg, base, limit, acc),
          f"VM_SET_SEGMENT_DESCRIPTOR ({int(reg)})")


def setup_memory(host: Host, fd: int, abi: ioc.Abi, alloc: int) -> mmap.mmap:
    """Steps 5-8. The guest side is R/W/X; host mprotect cannot narrow it."""
    _call(host, fd, ioc.VM_SET_CAPABILITY, s.VmCapability(0, Cap.HALT_EXIT, 1, 0),
          "set VM_CAP_HALT_EXIT")
    seg15 = s.VmMemseg15(segid=VM_SYSMEM, len=alloc)
    if abi.memseg_size == ctypes.sizeof(s.VmMemseg15):
        try:
            host.ioctl(fd, abi.alloc_memseg, bytearray(s.struct_bytes(seg15)))
        except OSError as exc:
            if exc.errno != errno.ENOTTY or abi.alloc_memseg_fallback is None:
                raise BhyveError(f"VM_ALLOC_MEMSEG: {exc.strerror}") from None
            _call(host, fd, abi.alloc_memseg_fallback, s.VmMemseg14(segid=VM_SYSMEM, len=alloc),
                  "VM_ALLOC_MEMSEG")
    else:
        _call(host, fd, abi.alloc_memseg, s.VmMemseg14(segid=VM_SYSMEM, len=alloc),
              "VM_ALLOC_MEMSEG")
    _call(host, fd, ioc.VM_MMAP_MEMSEG,
          s.VmMemmap(gpa=0, segid=VM_SYSMEM, segoff=0, len=alloc, prot=PROT_ALL, flags=0),
          "VM_MMAP_MEMSEG")
    try:
        return host.mmap_vm(fd, alloc)
    except OSError as exc:
        raise BhyveError(f"mmap: {exc.strerror}") from None


SEGMENTS = (Reg.CS, Reg.SS, Reg.DS, Reg.ES, Reg.FS, Reg.GS)


def setup_cpu(host: Host, fd: int, plan: CpuPlan) -> None:
    """Steps 12-16, then 19-20 (the TSC sysctls of 17-18 sit between them
    in Solo5 but issue no ioctl)."""
    p = plan.sregs
    for reg, value in ((Reg.CR0, p.cr0), (Reg.CR3, p.cr3), (Reg.CR4, p.cr4),
                       (Reg.EFER, p.efer)):
        set_register(host, fd, reg, value)
    for reg in SEGMENTS:
        seg = p.cs if reg is Reg.CS else p.data
        set_descriptor(host, fd, reg, seg.base, seg.limit, access(seg))
        set_register(host, fd, reg, seg.selector)
    set_descriptor(host, fd, Reg.GDTR, p.gdt_base, p.gdt_limit, 0)
    for reg, seg in ((Reg.TR, p.tr), (Reg.LDTR, p.ldt)):
        set_descriptor(host, fd, reg, seg.base, seg.limit, access(seg))
        set_register(host, fd, reg, seg.selector)
    for reg, value in ((Reg.RIP, plan.rip), (Reg.RFLAGS, plan.rflags), (Reg.RSP, plan.rsp),
                       (Reg.RDI, plan.rdi)):
        set_register(host, fd, reg, value)
    _call(host, fd, ioc.VM_ACTIVATE_CPU, ctypes.c_int32(0), "VM_ACTIVATE_CPU")


def tsc_hz(host: Host) -> int:
    """Steps 17-18: Hz exactly as the host reports it (KVM gives kHz x 1000)."""
    try:
        (hz,) = struct.unpack("<Q", host.sysctl_read("machdep.tsc_freq", 8))
    except OSError as exc:
        raise BhyveError(f"sysctl(machdep.tsc_freq): {exc.strerror}") from None
    try:
        (inv,) = struct.unpack("<i", host.sysctl_read("kern.timecounter.invariant_tsc", 4))
    except OSError as exc:
        raise BhyveError(f"sysctl(kern.timecounter.invariant_tsc: {exc.strerror}") from None
    if inv != 1:
        raise BhyveError("Host TSC is not invariant, cannot continue")
    return int(hz)


def osreldate(host: Host) -> int:
    try:
        (value,) = struct.unpack("<i", host.sysctl_read("kern.osreldate", 4))
    except OSError as exc:
        raise BhyveError(f"sysctl(kern.osreldate): {exc.strerror}") from None
    return int(value)
