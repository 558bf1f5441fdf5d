"""HALT (8): the guest's exit status and optional trap-frame cookie."""

from __future__ import annotations

from tender import abi
from tender.memory import GuestMemory
from tender.record import record


@record(frozen=True)
class Halt:
    """A HALT hypercall, decoded."""

    status: int         # as the guest passed it (i32)
    cookie: int         # GPA of up to 512 bytes (a trap frame), or 0
    trap_frame: tuple[int, ...] | None


def halt(mem: GuestMemory, gpa: int) -> Halt:
    cookie, status = mem.read_struct(abi.HALT, gpa)
    frame = None
    if cookie != 0:
        mem.check(cookie, abi.HALT_COOKIE_MAX)
        frame = abi.TRAP_FRAME.unpack(mem.checked(cookie, abi.TRAP_FRAME.size))
    return Halt(status, cookie, frame)
