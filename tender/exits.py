"""The typed exits a backend's run() returns, and how a ring kick travels.

Pure types, on the boot path (tender.backend, the protocols, is not): the
core dispatches on these and never reads a host's raw exit record."""

from __future__ import annotations

from enum import Enum

from tender.record import record


@record(frozen=True)
class Hypercall:
    """The guest wrote `gpa` (its argument struct) to hypercall port `nr`."""

    nr: int
    gpa: int


@record(frozen=True)
class Kick:
    """The guest kicked the net ring (port 0x600) and the host reported it as
    an exit (bhyve); on KVM an ioeventfd absorbs it and this never appears."""


@record(frozen=True)
class GuestWrite:
    """The guest wrote to a page it may only read, whichever way the host
    reports it (an MMIO exit on a read-only memslot, an EFAULT, ...).
    `gpa` is None where the host does not say (KVM's EFAULT)."""

    gpa: int | None


@record(frozen=True)
class Retry:
    """Nothing to do: run again (EINTR, bhyve's BOGUS exit). The core checks
    for pending signals and stop requests before it does."""


@record(frozen=True)
class Interrupted:
    """The run was stopped from outside (Tender.stop, a signal)."""


@record(frozen=True)
class Fatal:
    """The backend's own fatal message, already formatted as its host's
    tender prints it (one line, or the lines of a dump)."""

    lines: tuple[str, ...]


@record(frozen=True)
class HandlerFailed:
    """A native hypercall twin (csrc/) met a fatal condition; `message` is
    the handler's, so the core classifies it as it would its Python twin's."""

    message: str


@record(frozen=True)
class HostExit:
    """An exit the core has no meaning for, with the host's reason code.
    Exit hooks (the debug modules) may claim it; otherwise the core raises
    `Backend.exit_error` for it. Backends subclass it to carry detail."""

    reason: int

    def resume(self) -> bool:
        """True when the backend already dealt with it (the loop runs on
        once the hooks have seen it)."""
        return False

    def trace_fields(self) -> dict[str, object]:
        """What --trace adds to this exit's record."""
        return {}


Exit = Hypercall | Kick | GuestWrite | Retry | Interrupted | Fatal | HandlerFailed | HostExit


class KickMode(Enum):
    EVENTFD = "eventfd"   # KVM_IOEVENTFD: the kick never leaves the kernel
    EXIT = "exit"         # a real exit; the loop writes one byte to a pipe
