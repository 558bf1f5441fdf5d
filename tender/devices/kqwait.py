"""The POLL wait set on kqueue (BHYVE_SPEC 8.3): one EVFILT_READ per NET
fd with the manifest index as udata; ready_set is the OR of 1 << udata.
The logic is pure over a `Kqueue`; `SelectKqueue` is the real one (BSDs
only), which tender/devices/poller.py uses where there is no epoll."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

EVFILT_READ = -1
EV_ADD = 0x0001
NS = 1_000_000_000
# As the epoll path's clamp (2**31 - 1 ms): a guest's u64 timeout must not
# overflow the float select.kqueue takes.
MAX_TIMEOUT_S = (2**31 - 1) / 1000


@dataclass(frozen=True)
class Change:
    ident: int
    filter: int
    flags: int
    udata: int


@dataclass(frozen=True)
class Event:
    ident: int
    udata: int


class Kqueue(Protocol):
    def control(self, changes: list[Change] | None, max_events: int,
                timeout: tuple[int, int] | None) -> list[Event]: ...
    def fileno(self) -> int: ...
    def close(self) -> None: ...


def split_timeout(timeout_ns: int) -> tuple[int, int]:
    """A struct timespec: whole seconds and the nanosecond remainder."""
    return timeout_ns // NS, timeout_ns % NS


class WaitSet:
    def __init__(self, kq: Kqueue, fds: Iterable[tuple[int, int]]) -> None:
        """`fds`: (fd, manifest index) of each NET device, registered in one call."""
        self._kq = kq
        changes = [Change(fd, EVFILT_READ, EV_ADD, index) for fd, index in fds]
        self._n = max(1, len(changes))
        kq.control(changes, 0, (0, 0))

    def poll(self, timeout_ns: int) -> tuple[int, int]:
        """(number of events, ready_set)."""
        events = self._kq.control(None, self._n, split_timeout(timeout_ns))
        ready = 0
        for ev in events:
            ready |= 1 << ev.udata
        return len(events), ready

    def fileno(self) -> int:
        return self._kq.fileno()

    def close(self) -> None:
        self._kq.close()


class SelectKqueue:
    """select.kqueue behind the Kqueue shape (FreeBSD only; PEP 475 retries
    EINTR with the remaining timeout, so unlike Solo5 no warning is printed)."""

    def __init__(self) -> None:
        import select  # kqueue exists only on BSDs
        self._select = select
        self._kq = getattr(select, "kqueue")()  # noqa: B009 - absent from Linux stubs

    def control(self, changes: list[Change] | None, max_events: int,
                timeout: tuple[int, int] | None) -> list[Event]:
        sel = self._select
        kevent = getattr(sel, "kevent")  # noqa: B009
        evs = [kevent(c.ident, filter=c.filter, flags=c.flags, udata=c.udata)
               for c in changes or ()]
        wait = None if timeout is None else min(timeout[0] + timeout[1] / NS, MAX_TIMEOUT_S)
        got = self._kq.control(evs or None, max_events, wait)
        return [Event(int(e.ident), int(e.udata)) for e in got]

    def fileno(self) -> int:
        return int(self._kq.fileno())

    def close(self) -> None:
        self._kq.close()
