"""The host wait set for POLL: an epoll set over the attached tap fds."""

from __future__ import annotations

import select

from tender.errors import DeviceError

_READY = select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP
_MAX_TIMEOUT_MS = 2**31 - 1


class Poller:
    """An epoll set over the attached NET fds, keyed by handle."""

    def __init__(self, fds_by_handle: dict[int, int]) -> None:
        try:
            self._epoll = select.epoll()
        except OSError as exc:     # EMFILE with many guests in one process
            raise DeviceError(f"Could not create the POLL wait set: {exc.strerror}") from None
        self._handle_of: dict[int, int] = {}
        for handle, fd in fds_by_handle.items():
            self._epoll.register(fd, select.EPOLLIN)
            self._handle_of[fd] = handle

    def wait(self, timeout_ns: int) -> tuple[int, int]:
        """(ready_set, number ready) after at most timeout_ns."""
        # epoll counts in int milliseconds: clamp huge guest timeouts (a
        # u64) instead of overflowing; round up so a short timeout does
        # not become a busy 0, except a 0 timeout, which must not block.
        timeout_ms = min(-(-timeout_ns // 1_000_000), _MAX_TIMEOUT_MS)
        events = self._epoll.poll(timeout_ms / 1000)
        ready = 0
        for fd, mask in events:
            if mask & _READY:
                ready |= 1 << self._handle_of[fd]
        return ready, bin(ready).count("1")

    def close(self) -> None:
        self._epoll.close()
