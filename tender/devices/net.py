"""A tap attached to a NET_BASIC manifest entry (spec 6.5).

`attach()` opens the tap through /dev/net/tun (IFF_TAP | IFF_NO_PI,
non-blocking) after solo5-hvt's checks, or adopts an already-open tap fd
(`@N`). Unlike upstream, `@N` works: its MTU is found through TUNGETIFF +
SIOCGIFMTU, defaulting to 1500 when the interface cannot be asked."""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import sys
from typing import TYPE_CHECKING

from tender.config import NetSpec
from tender.errors import DeviceError
from tender.record import record

if TYPE_CHECKING:
    import socket

TUN_PATH = "/dev/net/tun"
IFNAMSIZ = 16
DEFAULT_MTU = 1500

# <linux/if_tun.h>, <linux/sockios.h>, <linux/ethtool.h>
TUNSETIFF = 0x400454CA
TUNGETIFF = 0x800454D2
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_UP = 0x1
IFF_RUNNING = 0x40
SIOCGIFFLAGS = 0x8913
SIOCGIFMTU = 0x8921
SIOCETHTOOL = 0x8946
ETHTOOL_SGSO = 0x00000024
ETHTOOL_SGRO = 0x0000002C

_IFREQ = struct.Struct("16sH22x")         # ifr_name, ifr_flags (40 bytes)
_IFREQ_INT = struct.Struct("16si20x")     # ifr_name, ifr_mtu


@record
class NetDevice:
    """An attached tap (or FramePipe end) and what the guest is told of it."""

    name: str
    iface: str          # as given: an interface name or "@N"
    fd: int
    mtu: int = DEFAULT_MTU
    mac: bytes = bytes(6)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _fail(iface: str, err: int) -> DeviceError:
    return DeviceError(f"Could not attach interface: {iface}: {os.strerror(err)}")


def _if_flags(sock: socket.socket, iface: str) -> int | None:
    """The interface's flags, or None if it does not exist (in this netns)."""
    try:
        res = fcntl.ioctl(sock, SIOCGIFFLAGS, _IFREQ.pack(iface.encode(), 0))
    except OSError:
        return None
    return int(_IFREQ.unpack(res)[1])


def _if_mtu(sock: socket.socket, iface: str) -> int:
    res = fcntl.ioctl(sock, SIOCGIFMTU, _IFREQ_INT.pack(iface.encode(), 0))
    return int(_IFREQ_INT.unpack(res)[1])


def _disable_offloads(sock: socket.socket, iface: str) -> None:
    """GRO/GSO off, so the host never hands the guest aggregated frames
    bigger than its 2 KiB buffers. Errors are ignored, as upstream."""
    # cffi, not ctypes (ctypes costs ~1.5 ms and ~0.7 MiB to import).
    from tender._vcpu import ffi

    for cmd in (ETHTOOL_SGRO, ETHTOOL_SGSO):
        value = ffi.new("uint32_t[2]", [cmd, 0])     # struct ethtool_value; ifr_data
        buf = bytearray(iface.encode().ljust(16, b"\0") + bytes(24))
        struct.pack_into("Q", buf, 16, int(ffi.cast("uintptr_t", value)))
        try:
            fcntl.ioctl(sock, SIOCETHTOOL, buf)
        except OSError:
            pass


def _open_tap(iface: str) -> tuple[int, int]:
    """solo5-hvt's tap attach (Linux): returns (fd, mtu) or raises."""
    if sys.platform.startswith("freebsd"):     # no /dev/net/tun: /dev/IFACE
        from tender.devices.bsdtap import open_tap

        return open_tap(iface)
    if len(iface.encode()) >= IFNAMSIZ:
        raise _fail(iface, errno.ENAMETOOLONG)
    import socket  # only when a net device is attached: its import is slow

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        # Must exist and be up: opening /dev/net/tun with a free name would
        # otherwise silently create a new, unconfigured tap.
        flags = _if_flags(sock, iface)
        if flags is None:
            raise _fail(iface, errno.ENOENT)
        if not flags & (IFF_UP | IFF_RUNNING):
            raise _fail(iface, errno.ENETDOWN)
        try:
            fd = os.open(TUN_PATH, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise _fail(iface, exc.errno or errno.EIO) from None
        try:
            try:
                res = fcntl.ioctl(fd, TUNSETIFF, _IFREQ.pack(iface.encode(), IFF_TAP | IFF_NO_PI))
            except OSError as exc:
                raise _fail(iface, exc.errno or errno.EIO) from None
            # A pattern such as tap%d would make the kernel pick a new name.
            got = _IFREQ.unpack(res)[0].split(b"\0", 1)[0].decode(errors="replace")
            if got != iface:
                raise _fail(iface, errno.EINVAL)
            try:
                mtu = _if_mtu(sock, iface)
            except OSError as exc:
                raise _fail(iface, exc.errno or errno.EIO) from None
            _disable_offloads(sock, iface)
        except BaseException:
            os.close(fd)
            raise
    return fd, mtu


def _adopt_fd(text: str) -> tuple[int, int]:
    """`@N`: an already-open tap fd handed over by an orchestrator. Made
    non-blocking; MTU from TUNGETIFF + SIOCGIFMTU, else 1500 (upstream never
    sets it and always fails; see README)."""
    iface = "@" + text
    if not (text.isascii() and text.isdigit()) or int(text) > 0x7FFFFFFF:
        raise _fail(iface, errno.EBADF)
    fd = int(text)
    mtu = DEFAULT_MTU
    import socket

    from tender.devices.pipe import is_frame_socket

    # First make sure it is a tap at all (and only then touch its flags):
    # never feed the guest, or change, whatever else this fd is.
    try:
        res = fcntl.ioctl(fd, TUNGETIFF, _IFREQ.pack(b"", 0))
    except OSError as exc:
        # Or the guest end of a FramePipe-like SOCK_SEQPACKET socket.
        if not is_frame_socket(fd):
            raise _fail(iface, exc.errno or errno.EBADF) from None
    else:
        name = _IFREQ.unpack(res)[0].split(b"\0", 1)[0].decode(errors="replace")
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                mtu = _if_mtu(sock, name)
        except OSError:
            mtu = DEFAULT_MTU   # e.g. the tap lives in another netns
    try:
        fl = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, fl | os.O_NONBLOCK)
        os.set_inheritable(fd, False)
    except OSError as exc:
        raise _fail(iface, exc.errno or errno.EBADF) from None
    return fd, mtu


def attach(spec: NetSpec) -> NetDevice:
    """Open (or adopt) the tap for one --net:NAME=IFACE option, or take the
    guest end of a FramePipe."""
    if spec.pipe is not None:
        return NetDevice(spec.name, "<pipe>", os.dup(spec.pipe.guest_fileno()),
                         spec.pipe.mtu, spec.mac or bytes(6))
    assert spec.iface is not None
    if spec.iface.startswith("@"):
        fd, mtu = _adopt_fd(spec.iface[1:])
    else:
        fd, mtu = _open_tap(spec.iface)
    return NetDevice(spec.name, spec.iface, fd, mtu, spec.mac or bytes(6))


def random_mac() -> bytes:
    """Unicast, locally administered (spec 6.5)."""
    try:
        raw = bytearray(os.urandom(6))
    except OSError as exc:
        raise DeviceError(f"Could not read /dev/urandom: {exc.strerror}") from None
    raw[0] = (raw[0] & ~0x01 & 0xFF) | 0x02
    return bytes(raw)


def effective_mac(dev: NetDevice) -> bytes:
    """The MAC the guest sees: the --net-mac one, or a random one when that
    is absent or all zeros (as upstream)."""
    return dev.mac if any(dev.mac) else random_mac()
