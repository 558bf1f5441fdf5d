"""KVM ioctl numbers and the C struct layouts they take (x86_64)."""

from __future__ import annotations

import ctypes
import fcntl

from tender.errors import KvmError

KVM_API_VERSION = 12

GET_API_VERSION = 0xAE00
CREATE_VM = 0xAE01
CHECK_EXTENSION = 0xAE03
GET_VCPU_MMAP_SIZE = 0xAE04
GET_SUPPORTED_CPUID = 0xC008AE05
CREATE_VCPU = 0xAE41
SET_USER_MEMORY_REGION = 0x4020AE46
IOEVENTFD = 0x4040AE79
RUN = 0xAE80
GET_REGS = 0x8090AE81
SET_REGS = 0x4090AE82
GET_SREGS = 0x8138AE83
SET_SREGS = 0x4138AE84
SET_CPUID2 = 0x4008AE90
GET_FPU = 0x81A0AE8C
SET_FPU = 0x41A0AE8D
SET_GUEST_DEBUG = 0x4048AE9B
GET_TSC_KHZ = 0xAEA3
ENABLE_CAP = 0x4068AEA3
X86_SET_MSR_FILTER = 0x4188AEC6

CAP_USER_MEMORY = 3
CAP_IOEVENTFD = 36
CAP_GET_TSC_KHZ = 61
CAP_SET_GUEST_DEBUG2 = 195   # returns the supported GUESTDBG_* flags
CAP_READONLY_MEM = 81
CAP_X86_USER_SPACE_MSR = 188
CAP_X86_MSR_FILTER = 189

MSR_EXIT_REASON_FILTER = 1 << 2     # KVM_CAP_X86_USER_SPACE_MSR args[0]
MSR_FILTER_DEFAULT_DENY = 1
MSR_FILTER_READ = 1
MSR_FILTER_WRITE = 2
MSR_FILTER_MAX_RANGES = 16

MEM_READONLY = 2             # kvm_userspace_memory_region.flags

# kvm_guest_debug.control
GUESTDBG_ENABLE = 0x1
GUESTDBG_SINGLESTEP = 0x2
GUESTDBG_USE_SW_BP = 0x10000
GUESTDBG_USE_HW_BP = 0x20000

IOEVENTFD_FLAG_PIO = 2

EXIT_IO = 2
EXIT_DEBUG = 4
EXIT_HLT = 5
EXIT_MMIO = 6
EXIT_SHUTDOWN = 8
EXIT_FAIL_ENTRY = 9
EXIT_INTERNAL_ERROR = 17
EXIT_X86_RDMSR = 29
EXIT_X86_WRMSR = 30
EXIT_MEMORY_FAULT = 39

CPUID_MAX_ENTRIES = 100


class Regs(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "rax rbx rcx rdx rsi rdi rsp rbp r8 r9 r10 r11 r12 r13 r14 r15 rip rflags".split()
        )
    ]


class Segment(ctypes.Structure):
    _fields_ = [
        ("base", ctypes.c_uint64),
        ("limit", ctypes.c_uint32),
        ("selector", ctypes.c_uint16),
        ("type", ctypes.c_uint8),
        ("present", ctypes.c_uint8),
        ("dpl", ctypes.c_uint8),
        ("db", ctypes.c_uint8),
        ("s", ctypes.c_uint8),
        ("l", ctypes.c_uint8),
        ("g", ctypes.c_uint8),
        ("avl", ctypes.c_uint8),
        ("unusable", ctypes.c_uint8),
        ("padding", ctypes.c_uint8),
    ]


class DTable(ctypes.Structure):
    _fields_ = [
        ("base", ctypes.c_uint64),
        ("limit", ctypes.c_uint16),
        ("padding", ctypes.c_uint16 * 3),
    ]


class Sregs(ctypes.Structure):
    _fields_ = [
        ("cs", Segment), ("ds", Segment), ("es", Segment), ("fs", Segment),
        ("gs", Segment), ("ss", Segment), ("tr", Segment), ("ldt", Segment),
        ("gdt", DTable), ("idt", DTable),
        ("cr0", ctypes.c_uint64), ("cr2", ctypes.c_uint64), ("cr3", ctypes.c_uint64),
        ("cr4", ctypes.c_uint64), ("cr8", ctypes.c_uint64), ("efer", ctypes.c_uint64),
        ("apic_base", ctypes.c_uint64),
        ("interrupt_bitmap", ctypes.c_uint64 * 4),
    ]


class Fpu(ctypes.Structure):
    _fields_ = [
        ("fpr", (ctypes.c_uint8 * 16) * 8),
        ("fcw", ctypes.c_uint16),
        ("fsw", ctypes.c_uint16),
        ("ftwx", ctypes.c_uint8),
        ("pad1", ctypes.c_uint8),
        ("last_opcode", ctypes.c_uint16),
        ("last_ip", ctypes.c_uint64),
        ("last_dp", ctypes.c_uint64),
        ("xmm", (ctypes.c_uint8 * 16) * 16),
        ("mxcsr", ctypes.c_uint32),
        ("pad2", ctypes.c_uint32),
    ]


class UserMemoryRegion(ctypes.Structure):
    _fields_ = [
        ("slot", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("guest_phys_addr", ctypes.c_uint64),
        ("memory_size", ctypes.c_uint64),
        ("userspace_addr", ctypes.c_uint64),
    ]


class IoEventFd(ctypes.Structure):
    _fields_ = [
        ("datamatch", ctypes.c_uint64),
        ("addr", ctypes.c_uint64),
        ("len", ctypes.c_uint32),
        ("fd", ctypes.c_int32),
        ("flags", ctypes.c_uint32),
        ("pad", ctypes.c_uint8 * 36),
    ]


class GuestDebug(ctypes.Structure):
    _fields_ = [
        ("control", ctypes.c_uint32),
        ("pad", ctypes.c_uint32),
        ("debugreg", ctypes.c_uint64 * 8),
    ]


class EnableCap(ctypes.Structure):
    _fields_ = [
        ("cap", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("args", ctypes.c_uint64 * 4),
        ("pad", ctypes.c_uint8 * 64),
    ]


class MsrFilterRange(ctypes.Structure):
    _fields_ = [
        ("flags", ctypes.c_uint32),
        ("nmsrs", ctypes.c_uint32),
        ("base", ctypes.c_uint32),
        ("bitmap", ctypes.c_void_p),     # 1 bit per MSR from base: 1 = allowed
    ]


class MsrFilter(ctypes.Structure):
    _fields_ = [
        ("flags", ctypes.c_uint32),
        ("ranges", MsrFilterRange * MSR_FILTER_MAX_RANGES),
    ]


CPUID_ENTRY_SIZE = 40
CPUID_HEADER_SIZE = 8

assert ctypes.sizeof(Regs) == 0x90
assert ctypes.sizeof(Sregs) == 0x138
assert ctypes.sizeof(Fpu) == 0x1A0
assert ctypes.sizeof(UserMemoryRegion) == 0x20
assert ctypes.sizeof(IoEventFd) == 0x40
assert ctypes.sizeof(GuestDebug) == 0x48
assert ctypes.sizeof(EnableCap) == 0x68
assert ctypes.sizeof(MsrFilterRange) == 24 and ctypes.sizeof(MsrFilter) == 392


def ioctl_int(fd: int, request: int, arg: int, name: str) -> int:
    """An ioctl taking and returning an int; failure is a KvmError."""
    try:
        return int(fcntl.ioctl(fd, request, arg))
    except OSError as exc:
        raise KvmError(f"KVM: ioctl ({name}) failed: {exc.strerror}") from None


def ioctl_buf(fd: int, request: int, buf: ctypes.Structure | bytearray, name: str) -> int:
    """An ioctl on a mutable struct buffer; failure is a KvmError."""
    try:
        return int(fcntl.ioctl(fd, request, buf, True))
    except OSError as exc:
        raise KvmError(f"KVM: ioctl ({name}) failed: {exc.strerror}") from None
