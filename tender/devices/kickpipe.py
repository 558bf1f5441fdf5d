"""The ring kick where the host has no ioeventfd (FreeBSD vmm, BHYVE_SPEC
8.4): the guest's `outl` to port 0x600 is a real exit, the run loop writes
one byte to a pipe, and the ring I/O thread blocks reading the other end
(>= 1 byte per wake-up). Plain POSIX, so it lives with the ring, not with
a backend."""

from __future__ import annotations

import os


class PipeKick:
    def __init__(self) -> None:
        # Close-on-exec already (PEP 446): a child must not hold the ring awake.
        self.read_fd, self.write_fd = os.pipe()

    def kick(self) -> None:
        os.write(self.write_fd, b"\x01")

    def drain(self) -> int:
        """The I/O thread's side: how many kicks were waiting (>= 1 byte)."""
        return len(os.read(self.read_fd, 4096))

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            if fd >= 0:
                os.close(fd)
        self.read_fd = self.write_fd = -1


def open_kick() -> PipeKick | None:
    """None when the pipe cannot be made: then the ring is not offered."""
    try:
        return PipeKick()
    except OSError:
        return None
