"""vmm(4) struct layouts for FreeBSD/amd64 (BHYVE_SPEC 4), as ctypes
structures so that sizes and offsets can be checked against the spec on any
LP64 host (SysV x86-64 layout rules are FreeBSD/amd64's too)."""

from __future__ import annotations

import ctypes

VM_MAX_NAMELEN = 229          # SPECNAMELEN - 10 - 15 - 1
VM_MAX_SUFFIXLEN = 15
VM_EXIT_BUFFER = 4096         # >= 256: sizeof(struct vm_exit) on 15 was not read

i32, u32, u64, i64 = ctypes.c_int32, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_int64


class VmCapability(ctypes.Structure):
    _fields_ = [("cpuid", i32), ("captype", i32), ("capval", i32), ("allcpus", i32)]


class VmMemseg14(ctypes.Structure):
    _fields_ = [("segid", i32), ("len", u64), ("name", ctypes.c_char * (VM_MAX_SUFFIXLEN + 1))]


class VmMemseg15(ctypes.Structure):
    _fields_ = [("segid", i32), ("len", u64), ("name", ctypes.c_char * (VM_MAX_SUFFIXLEN + 1)),
                ("ds_mask", u64), ("ds_mask_size", u64), ("ds_policy", i32)]


class VmMemmap(ctypes.Structure):
    _fields_ = [("gpa", u64), ("segid", i32), ("segoff", i64), ("len", u64), ("prot", i32),
                ("flags", i32)]


class VmMunmap(ctypes.Structure):
    _fields_ = [("gpa", u64), ("len", u64)]


class VmRegister(ctypes.Structure):
    _fields_ = [("cpuid", i32), ("regnum", i32), ("regval", u64)]


class VmSegDesc(ctypes.Structure):
    _fields_ = [("cpuid", i32), ("regnum", i32), ("base", u64), ("limit", u32),
                ("access", u32)]


class VmRegisterSet(ctypes.Structure):
    _fields_ = [("cpuid", i32), ("count", u32), ("regnums", u64), ("regvals", u64)]


class VmRun(ctypes.Structure):
    """14 and later: the exit is copied out to a caller-owned buffer."""

    _fields_ = [("cpuid", i32), ("cpuset", u64), ("cpusetsize", u64), ("vm_exit", u64)]


class VmExitHead(ctypes.Structure):
    """The fixed head of struct vm_exit; the 120-byte union follows at 16."""

    _fields_ = [("exitcode", i32), ("inst_length", i32), ("rip", u64),
                ("u", ctypes.c_uint8 * 120)]


class VmRun13(ctypes.Structure):
    _fields_ = [("cpuid", i32), ("vm_exit", VmExitHead)]


class VmCpuset(ctypes.Structure):
    _fields_ = [("which", i32), ("cpusetsize", i32), ("cpus", u64)]


class VmmctlCreate(ctypes.Structure):
    """main's layout; on 15.0 `flags` is reserved[0] and must be zero."""

    _fields_ = [("name", ctypes.c_char * (VM_MAX_NAMELEN + 1)), ("flags", u32),
                ("reserved", i32 * 15)]


class VmmctlDestroy(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * (VM_MAX_NAMELEN + 1)), ("reserved", i32 * 16)]


class IfreqMtu(ctypes.Structure):
    _fields_ = [("ifr_name", ctypes.c_char * 16), ("ifr_mtu", i32),
                ("_rest", ctypes.c_uint8 * 12)]


# Union member offsets from the start of struct vm_exit (BHYVE_SPEC 4.8).
EXIT_INOUT_BITS = 16
EXIT_INOUT_PORT = 18
EXIT_INOUT_EAX = 20
EXIT_VMX_STATUS = 16
EXIT_VMX_REASON = 20
EXIT_VMX_QUAL = 24
EXIT_VMX_INST_TYPE = 32
EXIT_VMX_INST_ERROR = 36
EXIT_SUSPENDED_HOW = 16
EXIT_SIZE_14 = ctypes.sizeof(VmExitHead)


def struct_bytes(value: ctypes.Structure | ctypes.c_int32) -> bytes:
    return ctypes.string_at(ctypes.addressof(value), ctypes.sizeof(value))
