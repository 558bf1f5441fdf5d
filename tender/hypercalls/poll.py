"""POLL (3): wait until a NET device is readable or the timeout passes."""

from __future__ import annotations

import select

from tender import abi
from tender.hypercalls.context import Context

_READY = select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP


class Poller:
    """An epoll set over the attached NET fds, keyed by handle."""

    def __init__(self, fds_by_handle: dict[int, int]) -> None:
        self._epoll = select.epoll()
        self._handle_of: dict[int, int] = {}
        for handle, fd in fds_by_handle.items():
            self._epoll.register(fd, select.EPOLLIN)
            self._handle_of[fd] = handle

    def wait(self, timeout_ns: int) -> tuple[int, int]:
        """(ready_set, number ready) after at most timeout_ns."""
        events = self._epoll.poll(timeout_ns / 1e9)
        ready = 0
        for fd, mask in events:
            if mask & _READY:
                ready |= 1 << self._handle_of[fd]
        return ready, bin(ready).count("1")

    def close(self) -> None:
        self._epoll.close()


def poll(ctx: Context, gpa: int) -> None:
    ctx.mem.check_write(gpa, abi.POLL.size)
    timeout_ns, _, _ = ctx.mem.read_struct(abi.POLL, gpa)
    assert ctx.poller is not None
    ready, n = ctx.poller.wait(timeout_ns)
    ctx.mem.write_struct(abi.POLL, gpa, timeout_ns, ready, n)
