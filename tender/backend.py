"""The backend interface: what the backend-neutral core asks of a hypervisor.

Pure types only. `tender/kvm/` (Linux) and `tender/bhyve/` (FreeBSD vmm) sit
behind it; nothing here names either. A backend turns its host's exit record
into one of the typed exits below, so the core never reads a raw exit struct.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from tender.layout import CpuPlan


@dataclass(frozen=True)
class Hypercall:
    """The guest wrote `gpa` (its argument struct) to hypercall port `nr`."""

    nr: int
    gpa: int


@dataclass(frozen=True)
class Kick:
    """The guest kicked the net ring (port 0x600) and the host reported it as
    an exit (bhyve); on KVM an ioeventfd absorbs it and this never appears."""


@dataclass(frozen=True)
class GuestWrite:
    """The guest wrote to a page it may only read, whichever way the host
    reports it (an MMIO exit on a read-only memslot, an EFAULT, ...)."""

    gpa: int


@dataclass(frozen=True)
class Retry:
    """Nothing to do: run again (EINTR, bhyve's BOGUS exit). The core checks
    for pending signals and stop requests before it does."""


@dataclass(frozen=True)
class Interrupted:
    """The run was stopped from outside (Tender.stop, a signal)."""


@dataclass(frozen=True)
class Fatal:
    """The backend's own fatal message, already formatted as its host's
    tender prints it (one line, or the lines of a dump)."""

    lines: tuple[str, ...]


Exit = Hypercall | Kick | GuestWrite | Retry | Interrupted | Fatal


class KickMode(Enum):
    EVENTFD = "eventfd"   # KVM_IOEVENTFD: the kick never leaves the kernel
    EXIT = "exit"         # a real exit; the loop writes one byte to a pipe


class GuestRam(Protocol):
    """Host mapping of guest-physical memory at offset 0 (mmap.mmap fits)."""

    def __len__(self) -> int: ...
    def __getitem__(self, key: slice, /) -> bytes: ...
    def __setitem__(self, key: slice, value: bytes, /) -> None: ...


class Backend(Protocol):
    """One VM with one vCPU, in the order the core calls it (spec 1)."""

    name: str
    # False where host mprotect does not reach the guest's view (bhyve).
    host_protection_effective: bool
    kick_mode: KickMode

    def open(self, alloc: int) -> GuestRam:
        """Create the VM and `alloc` bytes of guest memory at GPA 0."""
        ...

    def map_readonly(self, gpa: int, length: int) -> None:
        """Make [gpa, gpa+length) read-only for the guest where the host can."""
        ...

    def tsc_hz(self) -> int: ...

    def boot(self, plan: CpuPlan) -> None:
        """Load the boot registers and segments of `plan` into vCPU 0."""
        ...

    def run(self) -> Exit: ...

    def close(self) -> None:
        """Idempotent; runs on every exit path, signals included."""
        ...


@dataclass(frozen=True)
class HostKind:
    name: str        # "kvm" or "bhyve"
    device: str      # the node that must exist


KVM = HostKind("kvm", "/dev/kvm")
BHYVE = HostKind("bhyve", "/dev/vmm")  # a directory, present once vmm.ko is loaded


def host_kind(platform: str = sys.platform) -> HostKind:
    """The backend for this OS, chosen by name so that the other backend's
    package is never imported (bhyve's is never loaded on Linux)."""
    return BHYVE if platform.startswith("freebsd") else KVM


def no_hypervisor(exists: Callable[[str], bool] = os.path.exists) -> str | None:
    """One line when neither hypervisor node exists, else None."""
    if exists(KVM.device) or exists(BHYVE.device):
        return None
    return ("no hypervisor: neither /dev/kvm (Linux KVM) nor /dev/vmm (FreeBSD vmm) "
            "exists on this host")
