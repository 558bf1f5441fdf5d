"""The /dev/kvm system fd."""

from __future__ import annotations

import errno
import os

from tender.errors import KvmError
from tender.kvm import ioctls as k
from tender.kvm.vmfd import VmFd

KVM_PATH = "/dev/kvm"


class Kvm:
    """An open /dev/kvm with a checked API version."""

    def __init__(self, path: str = KVM_PATH) -> None:
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            line = f"Could not open: {path}: {exc.strerror}"
            if exc.errno == errno.ENOENT and path == KVM_PATH:
                # Name both hypervisors: this host may have been meant for bhyve.
                # (An error path: tender.backend stays off the boot path.)
                from tender.backend import no_hypervisor

                line += f" ({no_hypervisor() or 'no /dev/kvm'})"
            raise KvmError(line) from None
        version = k.ioctl_int(self.fd, k.GET_API_VERSION, 0, "GET_API_VERSION")
        if version != k.KVM_API_VERSION:
            self.close()
            raise KvmError(
                f"KVM: API version is {version}, pytender requires version {k.KVM_API_VERSION}"
            )

    def check_extension(self, cap: int) -> int:
        return k.ioctl_int(self.fd, k.CHECK_EXTENSION, cap, "CHECK_EXTENSION")

    def vcpu_mmap_size(self) -> int:
        return k.ioctl_int(self.fd, k.GET_VCPU_MMAP_SIZE, 0, "GET_VCPU_MMAP_SIZE")

    def supported_cpuid(self) -> bytearray:
        """KVM_GET_SUPPORTED_CPUID with room for 100 entries, returned as a
        kvm_cpuid2 buffer ready to hand, unchanged, to KVM_SET_CPUID2."""
        buf = bytearray(k.CPUID_HEADER_SIZE + k.CPUID_ENTRY_SIZE * k.CPUID_MAX_ENTRIES)
        buf[0:4] = k.CPUID_MAX_ENTRIES.to_bytes(4, "little")
        k.ioctl_buf(self.fd, k.GET_SUPPORTED_CPUID, buf, "GET_SUPPORTED_CPUID")
        nent = int.from_bytes(buf[0:4], "little")
        return buf[: k.CPUID_HEADER_SIZE + k.CPUID_ENTRY_SIZE * nent]

    def create_vm(self) -> VmFd:
        size = self.vcpu_mmap_size()
        fd = k.ioctl_int(self.fd, k.CREATE_VM, 0, "CREATE_VM")
        return VmFd(fd, size)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
