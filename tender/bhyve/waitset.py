"""The POLL wait set on kqueue (BHYVE_SPEC 8.3). Plain BSD, not vmm: it
lives with the other host devices (tender/devices/kqwait.py), which the
core's Poller uses wherever there is no epoll."""

from __future__ import annotations

from tender.devices.kqwait import (
    EV_ADD,
    EVFILT_READ,
    Change,
    Event,
    Kqueue,
    SelectKqueue,
    WaitSet,
    split_timeout,
)

__all__ = ["EVFILT_READ", "EV_ADD", "Change", "Event", "Kqueue", "SelectKqueue", "WaitSet",
           "split_timeout"]
