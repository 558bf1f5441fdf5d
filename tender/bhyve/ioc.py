"""FreeBSD ioctl request encoding (sys/sys/ioccom.h) and the vmm numbers.

FreeBSD's direction bits and size field differ from Linux's (BHYVE_SPEC 3.1):
never reuse a Linux _IOW here."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from enum import IntEnum

from tender.bhyve import structs as s

IOCPARM_SHIFT = 13
IOCPARM_MASK = (1 << IOCPARM_SHIFT) - 1


class Dir(IntEnum):
    VOID = 0x20000000
    OUT = 0x40000000     # kernel -> user (_IOR)
    IN = 0x80000000      # user -> kernel (_IOW)
    INOUT = 0xC0000000   # _IOWR


def ioc(direction: Dir, group: str, num: int, size: int) -> int:
    """_IOC; a size the 13-bit field cannot hold is refused, not masked as
    the C macro would silently do."""
    if not 0 <= size <= IOCPARM_MASK:
        raise ValueError(f"ioctl parameter size {size} exceeds {IOCPARM_MASK}")
    if not 0 <= num <= 0xFF:
        raise ValueError(f"ioctl number {num} out of range")
    return int(direction) | (size << 16) | (ord(group) << 8) | num


def _v(direction: Dir, num: int, struct: type[ctypes.Structure] | int) -> int:
    size = struct if isinstance(struct, int) else ctypes.sizeof(struct)
    return ioc(direction, "v", num, size)


# Numbers that are the same on 14, 15.0 and main (BHYVE_SPEC 3.2).
VM_SET_CAPABILITY = _v(Dir.IN, 2, s.VmCapability)
VM_GET_CAPABILITY = _v(Dir.INOUT, 3, s.VmCapability)
VM_SUSPEND = _v(Dir.IN, 4, 4)
VM_REINIT = _v(Dir.VOID, 5, 0)
VM_MMAP_MEMSEG = _v(Dir.IN, 16, s.VmMemmap)
VM_MMAP_GETNEXT = _v(Dir.INOUT, 17, s.VmMemmap)
VM_MUNMAP_MEMSEG = _v(Dir.IN, 19, s.VmMunmap)
VM_SET_REGISTER = _v(Dir.IN, 20, s.VmRegister)
VM_GET_REGISTER = _v(Dir.INOUT, 21, s.VmRegister)
VM_SET_SEGMENT_DESCRIPTOR = _v(Dir.IN, 22, s.VmSegDesc)
VM_GET_SEGMENT_DESCRIPTOR = _v(Dir.INOUT, 23, s.VmSegDesc)
VM_SET_REGISTER_SET = _v(Dir.IN, 24, s.VmRegisterSet)
VM_GET_REGISTER_SET = _v(Dir.INOUT, 25, s.VmRegisterSet)
VM_RESTART_INSTRUCTION = _v(Dir.IN, 39, 4)
VM_ACTIVATE_CPU = _v(Dir.IN, 90, 4)
VM_GET_CPUS = _v(Dir.IN, 91, s.VmCpuset)   # IOW, as the header declares it
VM_SUSPEND_CPU = _v(Dir.IN, 92, 4)
VM_RESUME_CPU = _v(Dir.IN, 93, 4)

VM_RUN_13 = _v(Dir.INOUT, 1, s.VmRun13)
VM_RUN_14 = _v(Dir.IN, 1, s.VmRun)
VM_ALLOC_MEMSEG_14 = _v(Dir.IN, 14, s.VmMemseg14)
VM_ALLOC_MEMSEG_15 = _v(Dir.IN, 14, s.VmMemseg15)
VM_GET_MEMSEG_14 = _v(Dir.INOUT, 15, s.VmMemseg14)
VM_GET_MEMSEG_15 = _v(Dir.INOUT, 15, s.VmMemseg15)

# /dev/vmmctl, 15.0 and later (BHYVE_SPEC 3.3).
VMMCTL_VM_CREATE = ioc(Dir.INOUT, "V", 0, ctypes.sizeof(s.VmmctlCreate))
VMMCTL_VM_DESTROY = ioc(Dir.INOUT, "V", 1, ctypes.sizeof(s.VmmctlDestroy))

# FreeBSD's SIOCGIFMTU: _IOWR('i', 51, struct ifreq); Linux's is 0x8921.
SIOCGIFMTU = ioc(Dir.INOUT, "i", 51, ctypes.sizeof(s.IfreqMtu))

# The ioctls Solo5's Capsicum design allows on the VM fd (spec 3.2 notes).
CAPSICUM_VM_IOCTLS = ("VM_RUN", "VM_SET_CAPABILITY", "VM_ALLOC_MEMSEG", "VM_MMAP_MEMSEG",
                      "VM_SET_SEGMENT_DESCRIPTOR", "VM_SET_REGISTER", "VM_GET_REGISTER",
                      "VM_ACTIVATE_CPU")

FREEBSD_14 = 1400000
FREEBSD_15 = 1500000


@dataclass(frozen=True)
class Abi:
    """The version-dependent part of the vmm ABI, chosen from kern.osreldate."""

    osreldate: int
    vm_run: int
    vm_run_size: int
    alloc_memseg: int
    memseg_size: int
    # The 32-byte memseg a 15 kernel built with COMPAT_FREEBSD14 also takes.
    alloc_memseg_fallback: int | None


def abi_for(osreldate: int) -> Abi:
    if osreldate < FREEBSD_14:
        return Abi(osreldate, VM_RUN_13, ctypes.sizeof(s.VmRun13), VM_ALLOC_MEMSEG_14,
                   ctypes.sizeof(s.VmMemseg14), None)
    if osreldate < FREEBSD_15:
        return Abi(osreldate, VM_RUN_14, ctypes.sizeof(s.VmRun), VM_ALLOC_MEMSEG_14,
                   ctypes.sizeof(s.VmMemseg14), None)
    return Abi(osreldate, VM_RUN_14, ctypes.sizeof(s.VmRun), VM_ALLOC_MEMSEG_15,
               ctypes.sizeof(s.VmMemseg15), VM_ALLOC_MEMSEG_14)


def vm_fd_ioctls(abi: Abi) -> tuple[int, ...]:
    """CAPSICUM_VM_IOCTLS as this kernel's numbers: the VM fd's Capsicum
    ioctl allowlist. Every ioctl the backend issues on the VM fd is one
    of these (tests/test_capsicum.py holds it to a recorded run); on 15 the
    32-byte VM_ALLOC_MEMSEG fallback is allowed too."""
    by_name = {"VM_RUN": (abi.vm_run,),
               "VM_ALLOC_MEMSEG": (abi.alloc_memseg, *(
                   () if abi.alloc_memseg_fallback is None else (abi.alloc_memseg_fallback,)))}
    return tuple(n for name in CAPSICUM_VM_IOCTLS
                 for n in (by_name[name] if name in by_name else (globals()[name],)))
