"""KVM ioctl numbers, constants and struct buffers, all from <linux/kvm.h>.

Nothing here is written by hand: the numbers are the kernel header's, filled
in by the C compiler when tender._vcpu is built (csrc/kvm.cdef, cffi API
mode), and the structs are cffi buffers of the header's own layouts."""

from __future__ import annotations

import fcntl

from tender._vcpu import ffi, lib
from tender.errors import KvmError

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from typing import Any, TypeAlias

# A cffi `struct kvm_* *` (mypy sees cffi data as Any); a string, so that
# typing.Any is not needed at run time.
Struct: TypeAlias = "Any"

KVM_API_VERSION: int = lib.KVM_API_VERSION

GET_API_VERSION: int = lib.KVM_GET_API_VERSION
CREATE_VM: int = lib.KVM_CREATE_VM
CHECK_EXTENSION: int = lib.KVM_CHECK_EXTENSION
GET_VCPU_MMAP_SIZE: int = lib.KVM_GET_VCPU_MMAP_SIZE
GET_SUPPORTED_CPUID: int = lib.KVM_GET_SUPPORTED_CPUID
CREATE_VCPU: int = lib.KVM_CREATE_VCPU
SET_USER_MEMORY_REGION: int = lib.KVM_SET_USER_MEMORY_REGION
IOEVENTFD: int = lib.KVM_IOEVENTFD
RUN: int = lib.KVM_RUN
GET_REGS: int = lib.KVM_GET_REGS
SET_REGS: int = lib.KVM_SET_REGS
GET_SREGS: int = lib.KVM_GET_SREGS
SET_SREGS: int = lib.KVM_SET_SREGS
SET_CPUID2: int = lib.KVM_SET_CPUID2
GET_FPU: int = lib.KVM_GET_FPU
SET_FPU: int = lib.KVM_SET_FPU
SET_GUEST_DEBUG: int = lib.KVM_SET_GUEST_DEBUG
GET_TSC_KHZ: int = lib.KVM_GET_TSC_KHZ
ENABLE_CAP: int = lib.KVM_ENABLE_CAP
X86_SET_MSR_FILTER: int = lib.KVM_X86_SET_MSR_FILTER
GET_STATS_FD: int = lib.KVM_GET_STATS_FD

CAP_USER_MEMORY: int = lib.KVM_CAP_USER_MEMORY
CAP_IOEVENTFD: int = lib.KVM_CAP_IOEVENTFD
CAP_GET_TSC_KHZ: int = lib.KVM_CAP_GET_TSC_KHZ
CAP_READONLY_MEM: int = lib.KVM_CAP_READONLY_MEM
CAP_X86_USER_SPACE_MSR: int = lib.KVM_CAP_X86_USER_SPACE_MSR
CAP_X86_MSR_FILTER: int = lib.KVM_CAP_X86_MSR_FILTER

MSR_EXIT_REASON_FILTER: int = lib.KVM_MSR_EXIT_REASON_FILTER   # USER_SPACE_MSR args[0]
MSR_FILTER_DEFAULT_DENY: int = lib.KVM_MSR_FILTER_DEFAULT_DENY
MSR_FILTER_READ: int = lib.KVM_MSR_FILTER_READ
MSR_FILTER_WRITE: int = lib.KVM_MSR_FILTER_WRITE
MSR_FILTER_MAX_RANGES: int = lib.KVM_MSR_FILTER_MAX_RANGES

MEM_READONLY: int = lib.KVM_MEM_READONLY          # kvm_userspace_memory_region.flags
IOEVENTFD_FLAG_PIO: int = lib.KVM_IOEVENTFD_FLAG_PIO

# kvm_guest_debug.control
GUESTDBG_ENABLE: int = lib.KVM_GUESTDBG_ENABLE
GUESTDBG_SINGLESTEP: int = lib.KVM_GUESTDBG_SINGLESTEP
GUESTDBG_USE_SW_BP: int = lib.KVM_GUESTDBG_USE_SW_BP
GUESTDBG_USE_HW_BP: int = lib.KVM_GUESTDBG_USE_HW_BP

INTERNAL_ERROR_EMULATION: int = lib.KVM_INTERNAL_ERROR_EMULATION   # kvm_run.internal.suberror
# Where kvm_run's KVM_EXIT_DEBUG part (struct kvm_debug_exit_arch) starts.
RUN_DEBUG_EXIT_OFFSET: int = lib.VK_RUN_DEBUG_ARCH

EXIT_DEBUG: int = lib.KVM_EXIT_DEBUG
EXIT_MMIO: int = lib.KVM_EXIT_MMIO
EXIT_FAIL_ENTRY: int = lib.KVM_EXIT_FAIL_ENTRY
EXIT_INTERNAL_ERROR: int = lib.KVM_EXIT_INTERNAL_ERROR
EXIT_X86_RDMSR: int = lib.KVM_EXIT_X86_RDMSR
EXIT_X86_WRMSR: int = lib.KVM_EXIT_X86_WRMSR

CPUID_MAX_ENTRIES = 100       # our choice: room asked of KVM_GET_SUPPORTED_CPUID
CPUID_HEADER_SIZE: int = ffi.offsetof("struct kvm_cpuid2", "entries")
CPUID_ENTRY_SIZE: int = ffi.sizeof("struct kvm_cpuid_entry2")


def new(ctype: str, init: object = None) -> Struct:
    """A zeroed `struct kvm_*` (e.g. new("kvm_regs")), optionally initialised
    like ffi.new (a dict of fields)."""
    return ffi.new(f"struct {ctype} *", init)


# The constructors the ctypes classes had, kept for the debug code.
def Regs() -> Struct:
    return new("kvm_regs")


def Sregs() -> Struct:
    return new("kvm_sregs")


def Fpu() -> Struct:
    return new("kvm_fpu")


class GuestDebug:
    """struct kvm_guest_debug with its arch part's `debugreg` (DR0-DR7) at
    the top, where the debug code has always found it."""

    __slots__ = ("struct",)

    def __init__(self) -> None:
        self.struct = new("kvm_guest_debug")

    @property
    def control(self) -> int:
        return int(self.struct.control)

    @control.setter
    def control(self, value: int) -> None:
        self.struct.control = value

    @property
    def debugreg(self) -> Any:
        """`__u64[8]`, indexable and settable in place."""
        return self.struct.arch.debugreg


def ioctl_int(fd: int, request: int, arg: int, name: str) -> int:
    """An ioctl taking and returning an int; failure is a KvmError."""
    try:
        return int(fcntl.ioctl(fd, request, arg))
    except OSError as exc:
        raise KvmError(f"KVM: ioctl ({name}) failed: {exc.strerror}") from None


def ioctl_buf(fd: int, request: int, buf: Struct | bytearray, name: str) -> int:
    """An ioctl on a struct (a cffi `struct kvm_* *`, or a bytearray holding
    one); the kernel reads and writes it in place. Failure is a KvmError."""
    target = buf if isinstance(buf, bytearray) else ffi.buffer(buf)
    try:
        return int(fcntl.ioctl(fd, request, target, True))
    except OSError as exc:
        raise KvmError(f"KVM: ioctl ({name}) failed: {exc.strerror}") from None
