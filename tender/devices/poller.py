"""The host wait set for POLL: an epoll set over the attached tap fds, or
a kqueue where there is no epoll (FreeBSD, tender/devices/kqwait.py)."""

from __future__ import annotations

import select

from tender.errors import DeviceError

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from tender.devices.kqwait import Kqueue, WaitSet

# Only Linux's select has the epoll names.
_READY = (select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP) if hasattr(select, "epoll") else 0
_MAX_TIMEOUT_MS = 2**31 - 1


class Poller:
    """An epoll set over the attached NET fds, keyed by handle. `kqueue`
    (or a host without epoll) selects the kqueue wait set instead."""

    def __init__(self, fds_by_handle: dict[int, int], kqueue: Kqueue | None = None) -> None:
        self._kq: WaitSet | None = None
        if kqueue is not None or not hasattr(select, "epoll"):
            self._kq = _kqueue_set(fds_by_handle, kqueue)
            return
        try:
            self._epoll = select.epoll()
        except OSError as exc:     # EMFILE with many guests in one process
            raise DeviceError(f"Could not create the POLL wait set: {exc.strerror}") from None
        self._handle_of: dict[int, int] = {}
        for handle, fd in fds_by_handle.items():
            self._epoll.register(fd, select.EPOLLIN)
            self._handle_of[fd] = handle

    def wait_fd(self) -> int | None:
        """The kqueue's fd (a sandbox limits it); None on epoll."""
        return None if self._kq is None else self._kq.fileno()

    def wait(self, timeout_ns: int) -> tuple[int, int]:
        """(ready_set, number ready) after at most timeout_ns."""
        if self._kq is not None:
            n, ready_set = self._kq.poll(timeout_ns)
            return ready_set, n
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
        if self._kq is not None:
            self._kq.close()
        else:
            self._epoll.close()


def _kqueue_set(fds_by_handle: dict[int, int], kqueue: Kqueue | None) -> WaitSet:
    from tender.devices.kqwait import SelectKqueue, WaitSet

    try:
        kq = kqueue if kqueue is not None else SelectKqueue()
        return WaitSet(kq, [(fd, h) for h, fd in fds_by_handle.items()])
    except OSError as exc:
        raise DeviceError(f"Could not create the POLL wait set: {exc.strerror}") from None
