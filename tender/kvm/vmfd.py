"""A KVM VM fd: memslots, vCPU creation, ioeventfds."""

from __future__ import annotations

import os

from tender.errors import KvmError
from tender.kvm import ioctls as k
from tender.kvm.vcpu import VcpuFd


class VmFd:
    def __init__(self, fd: int, vcpu_mmap_size: int) -> None:
        self.fd = fd
        self._vcpu_mmap_size = vcpu_mmap_size

    def check_extension(self, cap: int) -> int:
        return k.ioctl_int(self.fd, k.CHECK_EXTENSION, cap, "CHECK_EXTENSION")

    def require_user_memory(self) -> None:
        if self.check_extension(k.CAP_USER_MEMORY) != 1:
            raise KvmError("KVM: host does not support KVM_CAP_USER_MEMORY")

    def set_user_memory_region(
        self, slot: int, gpa: int, size: int, host_addr: int, flags: int = 0
    ) -> None:
        region = k.new("kvm_userspace_memory_region", {
            "slot": slot, "flags": flags, "guest_phys_addr": gpa, "memory_size": size,
            "userspace_addr": host_addr,
        })
        k.ioctl_buf(self.fd, k.SET_USER_MEMORY_REGION, region, "SET_USER_MEMORY_REGION")

    def enable_cap(self, cap: int, *args: int) -> None:
        ec = k.new("kvm_enable_cap", {"cap": cap, "args": list(args)})
        k.ioctl_buf(self.fd, k.ENABLE_CAP, ec, "ENABLE_CAP")

    def set_msr_filter(self, flt: k.Struct) -> None:
        """The bitmaps `flt` points at are copied by KVM during the call."""
        k.ioctl_buf(self.fd, k.X86_SET_MSR_FILTER, flt, "X86_SET_MSR_FILTER")

    def create_vcpu(self, vcpu_id: int = 0) -> VcpuFd:
        fd = k.ioctl_int(self.fd, k.CREATE_VCPU, vcpu_id, "CREATE_VCPU")
        try:
            return VcpuFd(fd, self._vcpu_mmap_size)
        except KvmError:
            os.close(fd)
            raise

    def register_pio_eventfd(self, port: int, efd: int) -> None:
        """Any 4-byte OUT to `port` signals `efd` in the kernel, without an exit."""
        ev = k.new("kvm_ioeventfd", {"datamatch": 0, "addr": port, "len": 4, "fd": efd,
                                     "flags": k.IOEVENTFD_FLAG_PIO})
        k.ioctl_buf(self.fd, k.IOEVENTFD, ev, "IOEVENTFD")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
