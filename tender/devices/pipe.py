"""FramePipe: a network device whose other end is the Python program.

A SOCK_SEQPACKET socketpair keeps frame boundaries, and its guest end is an
ordinary pollable fd: POLL, the C twins and the ring thread serve it as they
serve a tap."""

from __future__ import annotations

import select
import socket

from tender.errors import UsageError

_RECV_MAX = 65536


class FramePipe:
    """`send(frame)` delivers an Ethernet frame to the guest; `recv(timeout)`
    returns the next frame the guest sent, or None after `timeout` seconds."""

    def __init__(self, mtu: int = 1500) -> None:
        if not 68 <= mtu <= 9000:
            raise UsageError(f"FramePipe MTU {mtu} is outside 68..9000")
        self.mtu = mtu
        self._host, self._guest = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._guest.setblocking(False)
        # Room for a burst of frames in each direction (tap-like queue depth).
        for s in (self._host, self._guest):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)

    def send(self, frame: bytes) -> None:
        self._host.send(frame)

    def recv(self, timeout: float | None = None) -> bytes | None:
        ready, _, _ = select.select([self._host], [], [], timeout)
        if not ready:
            return None
        return self._host.recv(_RECV_MAX)

    def fileno(self) -> int:
        """The Python end (for selectors)."""
        return self._host.fileno()

    def guest_fileno(self) -> int:
        """The guest's end: what the tender attaches (it dups it)."""
        return self._guest.fileno()

    def close(self) -> None:
        self._host.close()
        self._guest.close()


def is_frame_socket(fd: int) -> bool:
    """Whether fd is a Unix SOCK_SEQPACKET socket (a FramePipe end)."""
    try:
        with socket.socket(fileno=socket.dup(fd)) as s:
            return s.family == socket.AF_UNIX and s.type == socket.SOCK_SEQPACKET
    except OSError:
        return False
