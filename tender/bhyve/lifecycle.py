"""Create, open and destroy a named VM (BHYVE_SPEC 2.5).

The VM must not outlive the tender. Preferred: /dev/vmmctl with
VMMCTL_CREATE_DESTROY_ON_CLOSE (FreeBSD main): the kernel destroys the VM when
the descriptor's last reference goes, SIGKILL included, and no root is
needed for group `vmm`. 15.0: vmmctl without the flag, destroyed explicitly
on every exit path. 14: root-only sysctls, destroyed explicitly."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from enum import Enum

from tender.bhyve import ioc
from tender.bhyve import structs as s
from tender.bhyve.consts import VMMCTL_CREATE_DESTROY_ON_CLOSE
from tender.bhyve.host import Host
from tender.errors import TenderError
from tender.freebsd.capsicum import NO_CAPMODE_SYSCTL, Capsicum
from tender.freebsd.rights import FdKind

VMMCTL = "/dev/vmmctl"


class BhyveError(TenderError):
    """A FreeBSD vmm call failed."""


class Destroy(Enum):
    ON_CLOSE = "kernel destroys the VM when the vmmctl fd closes"
    VMMCTL = "VMMCTL_VM_DESTROY at exit"
    SYSCTL = "hw.vmm.destroy at exit (root)"


def vm_name(pid: int) -> str:
    return f"solo5-{pid}"


def _create_arg(name: str, flags: int) -> bytearray:
    if len(name.encode()) > s.VM_MAX_NAMELEN:
        raise BhyveError(f"VM name too long (max {s.VM_MAX_NAMELEN}): {name}")
    arg = s.VmmctlCreate()
    arg.name = name.encode()
    arg.flags = flags
    return bytearray(s.struct_bytes(arg))


def _destroy_arg(name: str) -> bytearray:
    arg = s.VmmctlDestroy()
    arg.name = name.encode()
    return bytearray(s.struct_bytes(arg))


@dataclass
class Vm:
    """An open VM. close() is idempotent: the VM fd first, then the destroy
    (Solo5's atexit order); destroy errors are ignored as upstream does."""

    host: Host
    name: str
    fd: int
    destroy: Destroy
    ctl_fd: int = -1
    closed: bool = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.fd >= 0:
            self.host.close(self.fd)
        try:
            if self.destroy is Destroy.VMMCTL:
                self.host.ioctl(self.ctl_fd, ioc.VMMCTL_VM_DESTROY, _destroy_arg(self.name))
            elif self.destroy is Destroy.SYSCTL:
                self.host.sysctl_write("hw.vmm.destroy", self.name.encode())
        except OSError:
            pass
        if self.ctl_fd >= 0:
            # With ON_CLOSE this close is what destroys the VM.
            self.host.close(self.ctl_fd)
            self.ctl_fd = -1


def create(host: Host, name: str, caps: Capsicum | None = None) -> Vm:
    """`caps`: limit the vmmctl fd once the VM exists (BHYVE_SPEC 9): to
    VMMCTL_VM_DESTROY when the destroy is ours, else to nothing but close."""
    rw = os.O_RDWR | os.O_CLOEXEC
    try:
        ctl = host.open(VMMCTL, rw)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise BhyveError(f"no write access to {VMMCTL} (need root or group vmm)") from None
        if exc.errno != errno.ENOENT:
            raise BhyveError(f"open({VMMCTL}): {exc.strerror}") from None
        if caps is not None:
            caps.refuse_capability_mode(NO_CAPMODE_SYSCTL)
        return _create_sysctl(host, name)
    destroy = Destroy.ON_CLOSE
    try:
        try:
            host.ioctl(ctl, ioc.VMMCTL_VM_CREATE, _create_arg(name, VMMCTL_CREATE_DESTROY_ON_CLOSE))
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            # 15.0: the flag word is reserved[0] and must be zero.
            host.ioctl(ctl, ioc.VMMCTL_VM_CREATE, _create_arg(name, 0))
            destroy = Destroy.VMMCTL
    except OSError as exc:
        host.close(ctl)
        raise BhyveError(f"Cannot create VM '{name}': {exc.strerror}") from None
    if caps is not None:
        try:
            if destroy is Destroy.VMMCTL:
                caps.limit(FdKind.VMMCTL_DESTROY, ctl, (ioc.VMMCTL_VM_DESTROY,))
            else:
                caps.limit(FdKind.VMMCTL_HELD, ctl)
        except BaseException:
            Vm(host, name, -1, destroy, ctl).close()
            raise
    try:
        fd = host.open(f"/dev/vmm/{name}", rw)
    except OSError as exc:
        Vm(host, name, -1, destroy, ctl).close()
        raise BhyveError(f"open(/dev/vmm/{name}): {exc.strerror}") from None
    return Vm(host, name, fd, destroy, ctl)


def _create_sysctl(host: Host, name: str) -> Vm:
    try:
        host.sysctl_write("hw.vmm.create", name.encode())  # no NUL
    except OSError as exc:
        raise BhyveError(f"Cannot create VM '{name}': {exc.strerror}") from None
    try:
        fd = host.open(f"/dev/vmm/{name}", os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        try:
            host.sysctl_write("hw.vmm.destroy", name.encode())
        except OSError:
            pass
        raise BhyveError(f"open(/dev/vmm/{name}): {exc.strerror}") from None
    return Vm(host, name, fd, Destroy.SYSCTL)
