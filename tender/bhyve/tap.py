"""FreeBSD tap attach (BHYVE_SPEC 8.1): /dev/IFACE, raw frames, no up-state
check (a FreeBSD tap comes up when opened), MTU by FreeBSD's SIOCGIFMTU."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

from tender.bhyve import ioc
from tender.bhyve import structs as s
from tender.bhyve.host import Host
from tender.errors import DeviceError

IFNAMSIZ = 16


@dataclass(frozen=True)
class Tap:
    fd: int
    mtu: int


def _fail(iface: str, err: int) -> DeviceError:
    return DeviceError(f"Could not attach interface: {iface}: {os.strerror(err)}")


def interface_names() -> set[str]:
    return {name for _, name in socket.if_nameindex()}


def mtu_request(iface: str) -> bytearray:
    req = s.IfreqMtu()
    req.ifr_name = iface.encode()
    return bytearray(s.struct_bytes(req))


def attach(host: Host, iface: str, sock_fd: int,
           names: Callable[[], set[str]] = interface_names) -> Tap:
    """`sock_fd`: an AF_INET/SOCK_DGRAM socket for the MTU query."""
    if len(iface.encode()) >= IFNAMSIZ:
        raise _fail(iface, errno.ENAMETOOLONG)
    # Checked first: opening /dev/tapN that does not exist would create it.
    if iface not in names():
        raise _fail(iface, errno.ENOENT)
    try:
        fd = host.open("/dev/" + iface, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _fail(iface, exc.errno or errno.EIO) from None
    req = mtu_request(iface)
    try:
        host.ioctl(sock_fd, ioc.SIOCGIFMTU, req)
    except OSError as exc:
        host.close(fd)
        raise _fail(iface, exc.errno or errno.EIO) from None
    return Tap(fd, int.from_bytes(req[16:20], "little", signed=True))
