"""The host OS's sandbox, entered just before the vCPU loop (spec 8.1).

The policy belongs to the host: seccomp on Linux (tender/linux/sandbox.py,
whose allowlist is re-exported here for the syscall audit), Capsicum on
FreeBSD (not wired yet). Chosen by platform, so the other host's module is
never imported."""

from __future__ import annotations

import sys

from tender.errors import HostError

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

__all__ = ["ALLOWED", "ALLOWED_IOCTLS", "FIONBIO", "IOCTL", "KEPT_UNUSED", "METRICS", "TGKILL",
           "enter"]


def enter(*, metrics: bool = False, platform: str = sys.platform) -> None:
    """`metrics`: also what the /metrics thread needs."""
    if platform.startswith("linux"):
        _enter_linux(metrics=metrics)
        return
    raise HostError(f"no sandbox for this host ({platform})")
