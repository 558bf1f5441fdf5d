"""A KVM vCPU fd, its shared kvm_run page, and its part of the C loop's view."""

from __future__ import annotations

import errno
import mmap
import os

from tender.errors import KvmError
from tender.kvm import ioctls as k

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from typing import Any


class VcpuFd:
    def __init__(self, fd: int, mmap_size: int) -> None:
        self.fd = fd
        try:
            self.run_area = mmap.mmap(
                fd, mmap_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
            )
        except OSError as exc:
            raise KvmError(f"KVM: mmap of vCPU run area failed: {exc.strerror}") from None
        self._native: Any = None
        self._run_ptr: Any = None

    @property
    def native_part(self) -> Any:
        """This vCPU's `struct vl_backend *` (csrc/vl_kvm.h), for
        vl_vcpu.backend: its fd, its run area, and the detail of the last
        VL_EXIT. Made on first use; lives as long as the fd."""
        if self._native is None:
            from tender._vcpu import ffi

            self._run_ptr = ffi.from_buffer(self.run_area)
            self._native = ffi.new("struct vl_backend *",
                                   {"vcpufd": self.fd, "run": self._run_ptr})
        return self._native

    def set_cpuid2(self, cpuid: bytearray) -> None:
        k.ioctl_buf(self.fd, k.SET_CPUID2, bytearray(cpuid), "SET_CPUID2")

    def get_regs(self) -> k.Struct:
        regs = k.Regs()
        k.ioctl_buf(self.fd, k.GET_REGS, regs, "GET_REGS")
        return regs

    def set_regs(self, regs: k.Struct) -> None:
        k.ioctl_buf(self.fd, k.SET_REGS, regs, "SET_REGS")

    def get_sregs(self) -> k.Struct:
        sregs = k.Sregs()
        k.ioctl_buf(self.fd, k.GET_SREGS, sregs, "GET_SREGS")
        return sregs

    def set_sregs(self, sregs: k.Struct) -> None:
        k.ioctl_buf(self.fd, k.SET_SREGS, sregs, "SET_SREGS")

    def get_fpu(self) -> k.Struct:
        fpu = k.Fpu()
        k.ioctl_buf(self.fd, k.GET_FPU, fpu, "GET_FPU")
        return fpu

    def set_fpu(self, fpu: k.Struct) -> None:
        k.ioctl_buf(self.fd, k.SET_FPU, fpu, "SET_FPU")

    def set_guest_debug(self, dbg: k.GuestDebug) -> None:
        k.ioctl_buf(self.fd, k.SET_GUEST_DEBUG, dbg.struct, "SET_GUEST_DEBUG")

    def tsc_khz(self) -> int:
        import fcntl

        try:
            return int(fcntl.ioctl(self.fd, k.GET_TSC_KHZ, 0))
        except OSError as exc:
            if exc.errno == errno.EIO:
                raise KvmError("KVM: host TSC is unstable, cannot continue") from None
            raise KvmError(f"KVM: ioctl (GET_TSC_KHZ) failed: {exc.strerror}") from None

    def close(self) -> None:
        if self.fd >= 0:
            if self._run_ptr is not None:
                from tender._vcpu import ffi

                ffi.release(self._run_ptr)
                self._run_ptr = self._native = None
            self.run_area.close()
            os.close(self.fd)
            self.fd = -1
