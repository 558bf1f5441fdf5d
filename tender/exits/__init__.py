"""The typed exits a backend's run() returns, and how a ring kick travels.

Pure types, on the boot path (tender.backend, the protocols, is not): the
core dispatches on these and never reads a host's raw exit record.

The exits a hello boot never meets (Kick, GuestWrite, Fatal, HandlerFailed)
live in `tender.exits.rare` and load on first use through this module's
`__getattr__`: `from tender.exits import Fatal` and `exits.Fatal` both work.
Callers on the boot path name them as `exits.Fatal` at the point of use."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # `X as X`: re-exported for the type checker; at run time __getattr__.
    from tender.exits.rare import Fatal as Fatal
    from tender.exits.rare import GuestWrite as GuestWrite
    from tender.exits.rare import HandlerFailed as HandlerFailed
    from tender.exits.rare import Kick as Kick

_RARE = frozenset({"Kick", "GuestWrite", "Fatal", "HandlerFailed"})


@dataclass(frozen=True)
class Hypercall:
    """The guest wrote `gpa` (its argument struct) to hypercall port `nr`."""

    nr: int
    gpa: int


@dataclass(frozen=True)
class Retry:
    """Nothing to do: run again (EINTR, bhyve's BOGUS exit). The core checks
    for pending signals and stop requests before it does."""


@dataclass(frozen=True)
class Interrupted:
    """The run was stopped from outside (Tender.stop, a signal)."""


@dataclass(frozen=True)
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



class KickMode(Enum):
    EVENTFD = "eventfd"   # KVM_IOEVENTFD: the kick never leaves the kernel
    EXIT = "exit"         # a real exit; the loop writes one byte to a pipe


if TYPE_CHECKING:
    Exit = Hypercall | Kick | GuestWrite | Retry | Interrupted | Fatal | HandlerFailed | HostExit


def __getattr__(name: str) -> object:
    """PEP 562: the rare exits (and the `Exit` union, which names them) on
    first use."""
    if name in _RARE:
        from tender.exits import rare
        return getattr(rare, name)
    if name == "Exit":
        from tender.exits import rare
        return (Hypercall | rare.Kick | rare.GuestWrite | Retry | Interrupted | rare.Fatal
                | rare.HandlerFailed | HostExit)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
