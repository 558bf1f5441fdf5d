"""A KVM vCPU fd and its shared kvm_run page."""

from __future__ import annotations

import errno
import mmap
import os

from tender.errors import KvmError
from tender.kvm import ioctls as k


class VcpuFd:
    def __init__(self, fd: int, mmap_size: int) -> None:
        self.fd = fd
        try:
            self.run_area = mmap.mmap(
                fd, mmap_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
            )
        except OSError as exc:
            raise KvmError(f"KVM: mmap of vCPU run area failed: {exc.strerror}") from None

    def set_cpuid2(self, cpuid: bytearray) -> None:
        k.ioctl_buf(self.fd, k.SET_CPUID2, bytearray(cpuid), "SET_CPUID2")

    def get_regs(self) -> k.Regs:
        regs = k.Regs()
        k.ioctl_buf(self.fd, k.GET_REGS, regs, "GET_REGS")
        return regs

    def set_regs(self, regs: k.Regs) -> None:
        k.ioctl_buf(self.fd, k.SET_REGS, regs, "SET_REGS")

    def get_sregs(self) -> k.Sregs:
        sregs = k.Sregs()
        k.ioctl_buf(self.fd, k.GET_SREGS, sregs, "GET_SREGS")
        return sregs

    def set_sregs(self, sregs: k.Sregs) -> None:
        k.ioctl_buf(self.fd, k.SET_SREGS, sregs, "SET_SREGS")

    def get_fpu(self) -> k.Fpu:
        fpu = k.Fpu()
        k.ioctl_buf(self.fd, k.GET_FPU, fpu, "GET_FPU")
        return fpu

    def set_fpu(self, fpu: k.Fpu) -> None:
        k.ioctl_buf(self.fd, k.SET_FPU, fpu, "SET_FPU")

    def set_guest_debug(self, dbg: k.GuestDebug) -> None:
        k.ioctl_buf(self.fd, k.SET_GUEST_DEBUG, dbg, "SET_GUEST_DEBUG")

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
            self.run_area.close()
            os.close(self.fd)
            self.fd = -1
