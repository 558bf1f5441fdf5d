"""Ring kick on FreeBSD (BHYVE_SPEC 8.4): no ioeventfd, so the guest's
`outl` to 0x600 is a real exit and the loop writes one byte to a pipe that
the ring I/O thread blocks on. The ring is offered exactly when the pipe
(and the thread, started by the ring code) exist. The pipe itself is plain
POSIX and lives with the ring (tender/devices/kickpipe.py)."""

from __future__ import annotations

from tender.devices.kickpipe import PipeKick, open_kick

__all__ = ["PipeKick", "open_kick"]
