"""The FreeBSD calls the backend makes, behind one small interface, so that
the same backend code runs against the real kernel or a recording stand-in
(tests/test_bhyve.py) that writes each call down instead of issuing it."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import mmap
import os
from typing import Protocol

from tender.devices.bsdtap import OsTapOps


class Host(Protocol):
    def open(self, path: str, flags: int) -> int: ...
    def close(self, fd: int) -> None: ...
    def ioctl(self, fd: int, request: int, arg: bytearray) -> None:
        """Raises OSError; `arg` is updated in place for OUT/INOUT requests."""
        ...
    def sysctl_write(self, name: str, value: bytes) -> None: ...
    def sysctl_read(self, name: str, size: int) -> bytes: ...
    def mmap_vm(self, fd: int, length: int) -> mmap.mmap: ...
    def getpid(self) -> int: ...


class FreeBsdHost(OsTapOps):
    """The real calls; only constructed on FreeBSD. open, close and ioctl
    are the tap's (fcntl.ioctl drops the GIL around the call: VM_RUN may
    block)."""

    def __init__(self) -> None:
        path = ctypes.util.find_library("c")
        self._libc = ctypes.CDLL(path, use_errno=True)

    def sysctl_write(self, name: str, value: bytes) -> None:
        buf = ctypes.create_string_buffer(value, len(value))
        if self._libc.sysctlbyname(name.encode(), None, None, buf,
                                   ctypes.c_size_t(len(value))) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))

    def sysctl_read(self, name: str, size: int) -> bytes:
        buf = ctypes.create_string_buffer(size)
        n = ctypes.c_size_t(size)
        if self._libc.sysctlbyname(name.encode(), buf, ctypes.byref(n), None,
                                   ctypes.c_size_t(0)) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return buf.raw[: n.value]

    def mmap_vm(self, fd: int, length: int) -> mmap.mmap:
        # File offset = guest-physical address; vmm refuses PROT_EXEC.
        return mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)

    def getpid(self) -> int:
        return os.getpid()


def is_enotty(exc: OSError) -> bool:
    return exc.errno == errno.ENOTTY
