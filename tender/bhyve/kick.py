"""Ring kick on FreeBSD (BHYVE_SPEC 8.4): no ioeventfd, so the guest's
`outl` to 0x600 is a real exit and the loop writes one byte to a pipe that
the ring I/O thread blocks on. The ring is offered exactly when the pipe
(and the thread, started by the ring code) exist."""

from __future__ import annotations

import os


class PipeKick:
    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe2(os.O_CLOEXEC)

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
