"""What this process holds right now, from /proc/self (Linux)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Usage:
    rss_kib: int
    fds: int
    threads: int
    maps: int       # lines of /proc/self/maps: an mmap leak shows here first

    def growth(self, later: Usage) -> Usage:
        return Usage(later.rss_kib - self.rss_kib, later.fds - self.fds,
                     later.threads - self.threads, later.maps - self.maps)


def _status_field(text: str, key: str) -> int:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise ValueError(f"/proc/self/status has no {key}")


def snapshot() -> Usage:
    with open("/proc/self/status") as f:
        status = f.read()
    with open("/proc/self/maps") as f:
        maps = sum(1 for _ in f)
    # listdir opens one fd of its own while it reads the directory.
    fds = len(os.listdir("/proc/self/fd")) - 1
    return Usage(_status_field(status, "VmRSS"), fds, _status_field(status, "Threads"), maps)
