"""The host OS's sandbox, entered just before the vCPU loop (spec 8.1).

The policy belongs to the host: seccomp on Linux (tender/linux/sandbox.py,
whose allowlist is re-exported here for the syscall audit), Capsicum on
FreeBSD (not wired yet: enter() says so and the run goes on). Chosen by
platform, so the other host's module is never imported."""

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


# A stock FreeBSD solo5-hvt drops no privileges either (BHYVE_SPEC 9: its
# Capsicum code is never compiled in); run, but say so.
NO_CAPSICUM = ("no sandbox on FreeBSD yet: Capsicum is not wired, the guest runs "
               "without one (as a stock solo5-hvt)")


def enter(*, metrics: bool = False, platform: str | None = None) -> str | None:
    """`metrics`: also what the /metrics thread needs. Returns a warning
    line when this host has no sandbox the tender can enter."""
    platform = platform or sys.platform
    if platform.startswith("linux"):
        _enter_linux(metrics=metrics)
        return None
    if platform.startswith("freebsd"):
        return NO_CAPSICUM
    raise HostError(f"no sandbox for this host ({platform})")
