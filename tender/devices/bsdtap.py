"""FreeBSD tap attach (BHYVE_SPEC 8.1): /dev/IFACE, raw frames, no up-state
check (a FreeBSD tap comes up when opened), MTU by FreeBSD's SIOCGIFMTU.

Plain BSD, not vmm, so it sits with the other host devices: net.attach()
uses it on FreeBSD. The calls go through `TapOps`, which tests replace with
a recording host (tests/test_bhyve.py)."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tender.errors import DeviceError

IFNAMSIZ = 16
# FreeBSD's _IOWR('i', 51, struct ifreq) (tender/bhyve/ioc.py derives the
# same number with its encoder); Linux's SIOCGIFMTU is 0x8921.
SIOCGIFMTU = 0xC0206933
IFREQ_MTU = struct.Struct("<16si12x")   # ifr_name, ifr_mtu (32 bytes)


class TapOps(Protocol):
    def open(self, path: str, flags: int) -> int: ...
    def close(self, fd: int) -> None: ...
    def ioctl(self, fd: int, request: int, arg: bytearray) -> None: ...


class OsTapOps:
    """The real calls."""

    def open(self, path: str, flags: int) -> int:
        return os.open(path, flags)

    def close(self, fd: int) -> None:
        os.close(fd)

    def ioctl(self, fd: int, request: int, arg: bytearray) -> None:
        fcntl.ioctl(fd, request, arg, True)


@dataclass(frozen=True)
class Tap:
    fd: int
    mtu: int


def _fail(iface: str, err: int) -> DeviceError:
    return DeviceError(f"Could not attach interface: {iface}: {os.strerror(err)}")


def interface_names() -> set[str]:
    return {name for _, name in socket.if_nameindex()}


def mtu_request(iface: str) -> bytearray:
    return bytearray(IFREQ_MTU.pack(iface.encode(), 0))


def attach(ops: TapOps, iface: str, sock_fd: int,
           names: Callable[[], set[str]] = interface_names) -> Tap:
    """`sock_fd`: an AF_INET/SOCK_DGRAM socket for the MTU query."""
    if len(iface.encode()) >= IFNAMSIZ:
        raise _fail(iface, errno.ENAMETOOLONG)
    # Checked first: opening /dev/tapN that does not exist would create it.
    if iface not in names():
        raise _fail(iface, errno.ENOENT)
    try:
        fd = ops.open("/dev/" + iface, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _fail(iface, exc.errno or errno.EIO) from None
    req = mtu_request(iface)
    try:
        ops.ioctl(sock_fd, SIOCGIFMTU, req)
    except OSError as exc:
        ops.close(fd)
        raise _fail(iface, exc.errno or errno.EIO) from None
    return Tap(fd, IFREQ_MTU.unpack(req)[1])


def open_tap(iface: str) -> tuple[int, int]:
    """net.attach()'s FreeBSD path: (fd, mtu) or one DeviceError line."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        tap = attach(OsTapOps(), iface, sock.fileno(), interface_names)
    return tap.fd, tap.mtu
