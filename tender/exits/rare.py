"""The typed exits a hello boot never sees: a bhyve ring kick, a write to a
read-only page, a backend's fatal message, a native twin's failure.

Kept out of `tender.exits` so the boot path does not build them (each frozen
dataclass costs ~0.2-0.4 ms of start-up); `tender.exits` hands them out on
first use, so `from tender.exits import Fatal` still works."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kick:
    """The guest kicked the net ring (port 0x600) and the host reported it as
    an exit (bhyve); on KVM an ioeventfd absorbs it and this never appears."""


@dataclass(frozen=True)
class GuestWrite:
    """The guest wrote to a page it may only read, whichever way the host
    reports it (an MMIO exit on a read-only memslot, an EFAULT, ...).
    `gpa` is None where the host does not say (KVM's EFAULT)."""

    gpa: int | None


@dataclass(frozen=True)
class Fatal:
    """The backend's own fatal message, already formatted as its host's
    tender prints it (one line, or the lines of a dump)."""

    lines: tuple[str, ...]


@dataclass(frozen=True)
class HandlerFailed:
    """A native hypercall twin (csrc/) met a fatal condition; `message` is
    the handler's, so the core classifies it as it would its Python twin's."""

    message: str
