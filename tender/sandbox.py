"""The host OS's sandbox, entered just before the vCPU loop (spec 8.1).

The policy belongs to the host: seccomp on Linux (tender/linux/sandbox.py,
whose allowlist is re-exported here for the syscall audit), Capsicum on
FreeBSD (tender/freebsd/: the bhyve backend limits its fds as it opens
them, enter() limits the run's devices and enters capability mode).
Chosen by platform, so the other host's module is never imported."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from tender.errors import HostError
from tender.record import record

if sys.platform.startswith("linux"):
    from tender.linux.sandbox import (
        ALLOWED,
        ALLOWED_IOCTLS,
        FIONBIO,
        IOCTL,
        KEPT_UNUSED,
        METRICS,
        TGKILL,
    )
    from tender.linux.sandbox import enter as _enter_linux

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from tender.devices.block import BlockDevice
    from tender.devices.net import NetDevice
    from tender.devices.poller import Poller
    from tender.devices.ring import NetRing

__all__ = ["ALLOWED", "ALLOWED_IOCTLS", "FIONBIO", "IOCTL", "KEPT_UNUSED", "METRICS", "TGKILL",
           "Held", "enter"]


# A kernel without Capsicum (or a libc without it) still runs guests, as a
# stock FreeBSD solo5-hvt does (BHYVE_SPEC 9: its Capsicum code is never
# compiled in); run, but say so.
NO_CAPSICUM = ("no sandbox: Capsicum is not available here (libc or kernel), the guest "
               "runs without one (as a stock solo5-hvt)")
STDERR = 2


@record(frozen=True)
class Held:
    """The descriptors a run holds when it enters the sandbox: Capsicum
    limits each (seccomp needs none of them)."""

    backend: object             # bhyve: has `capsicum`, its own fds already limited
    blocks: tuple[int, ...] = ()
    taps: tuple[int, ...] = ()
    waitset: int | None = None  # the kqueue (None: epoll, Linux)
    kick: tuple[int, int] | None = None
    console: int = 1

    @classmethod
    def of(cls, backend: object, blocks: Iterable[BlockDevice], nets: Iterable[NetDevice],
           poller: Poller, ring: NetRing | None, console: int) -> Held:
        return cls(backend, tuple(d.fd for d in blocks if d.fd >= 0),
                   tuple(d.fd for d in nets if d.fd >= 0), poller.wait_fd(),
                   None if ring is None else ring.kick_fds(), console)


def enter(*, metrics: bool = False, platform: str | None = None,
          held: Held | None = None) -> str | None:
    """`metrics`: also what the /metrics thread needs. Returns a warning
    line when this host has no sandbox the tender can enter."""
    platform = platform or sys.platform
    if platform.startswith("linux"):
        _enter_linux(metrics=metrics)
        return None
    if platform.startswith("freebsd"):
        return _enter_capsicum(held)
    raise HostError(f"no sandbox for this host ({platform})")


def _enter_capsicum(held: Held | None) -> str | None:
    from tender.freebsd.capsicum import Capsicum
    from tender.freebsd.rights import FdKind

    caps = getattr(held.backend, "capsicum", None) if held is not None else None
    if held is None or not isinstance(caps, Capsicum) or caps.libc is None:
        return NO_CAPSICUM
    kinds = [*((FdKind.TAP, fd) for fd in held.taps),
             *((FdKind.BLOCK, fd) for fd in held.blocks)]
    if held.waitset is not None:
        kinds.append((FdKind.WAITSET, held.waitset))
    if held.kick is not None:
        kinds += [(FdKind.KICK_READ, held.kick[0]), (FdKind.KICK_WRITE, held.kick[1])]
    # The guest's console and the tender's own lines (the same fd, often).
    kinds += [(FdKind.CONSOLE, fd) for fd in dict.fromkeys((held.console, STDERR))]
    for kind, fd in kinds:
        caps.limit(kind, fd)
    warning = caps.enter()
    return NO_CAPSICUM if caps.missing is not None else warning
