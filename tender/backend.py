"""The backend interface: what the backend-neutral core asks of a hypervisor.

Pure types only. `tender/kvm/` (Linux) and `tender/bhyve/` (FreeBSD vmm) sit
behind it; nothing here names either. A backend turns its host's exit record
into one of the typed exits below, so the core never reads a raw exit struct.
"""

from __future__ import annotations

import mmap
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tender.debugview import DebugView
from tender.errors import TenderError
from tender.exits import (
    Exit,
    Fatal,
    GuestWrite,
    HandlerFailed,
    HostExit,
    Hypercall,
    Interrupted,
    Kick,
    KickMode,
    Retry,
)
from tender.layout import CpuPlan

__all__ = [
    "BHYVE", "KVM", "Backend", "DebugView", "Exit", "Fatal", "GuestRam", "GuestWrite",
    "HandlerFailed", "HostExit", "HostKind", "Hypercall", "Interrupted", "Kick", "KickMode",
    "Retry", "RunBackend", "StatsView", "host_kind", "no_hypervisor",
]


class GuestRam(Protocol):
    """Host mapping of guest-physical memory at offset 0 (mmap.mmap fits)."""

    def __len__(self) -> int: ...
    def __getitem__(self, key: slice, /) -> bytes: ...
    def __setitem__(self, key: slice, value: bytes, /) -> None: ...


class StatsView(Protocol):
    """The host's own view of one run for tender/stats.py: its counters of
    the VM and the vCPU (KVM's binary statistics), and the names of the exit
    reasons the C loop counts. Read from any thread; never stops the guest."""

    # Why the host has no counters (an old kernel, another hypervisor), or None.
    unavailable: str | None

    def read(self) -> tuple[Mapping[str, int], Mapping[str, int]]:
        """(VM counters, vCPU counters) by name; empty once closed."""
        ...

    def exit_name(self, reason: int, last: int) -> str:
        """The name of slot `reason` of an exit counter array whose slot
        `last` holds every reason >= last."""
        ...

    def close(self) -> None:
        """Idempotent; before the VM goes."""
        ...


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


class RunBackend(Backend, Protocol):
    """What the run assembly needs beyond `Backend` from a backend whose
    vCPU loop is the C one (csrc/vcpu_loop.c serves the native twins
    between exits)."""

    def open(self, alloc: int) -> mmap.mmap:
        """As Backend.open; the mapping must be a host mmap (the C side
        reaches guest memory through its address)."""
        ...

    @property
    def debug_target(self) -> Any:
        """Opaque to the core: the backend's vCPU object (RunningVm.vcpu)."""
        ...

    def debug_view(self) -> DebugView:
        """Registers, breakpoints and debug stops of vCPU 0 for gdb and
        dumpcore; a backend without them raises DebugError (one line)."""
        ...

    @property
    def native_part(self) -> Any:
        """The vCPU's backend part of the C view (`struct vl_backend *`,
        opaque to the core): the ring thread stops the vCPU through it."""
        ...

    def ring_kick(self) -> Callable[[int], None] | None:
        """`register(efd)` making a guest kick signal efd in the kernel, or
        None when the host cannot."""
        ...

    def enter(self, view: Any, signals: tuple[int, ...], observed: bool = False) -> None:
        """Bind the native view (`struct vl_vcpu *`) to this vCPU; each of
        `signals` will make a blocked run() return Retry at once. `observed`:
        exit hooks want every exit the C loop would settle itself too."""
        ...

    def guest_readonly(self, gpa: int, length: int) -> bool:
        """True when the guest already cannot write [gpa, gpa+length) (a
        read-only memslot); else the core mprotects it on the host."""
        ...

    def leave(self) -> None:
        """Undo enter() (idempotent)."""
        ...

    def stats_view(self) -> StatsView:
        """The host's statistics of this VM (after open()); the caller closes it."""
        ...

    def exit_error(self, exit: Exit) -> TenderError:
        """The error a GuestWrite, Fatal or unclaimed HostExit ends the run with."""
        ...

    def translation_fault(self, rip: int) -> str:
        """The host's line for a guest access the host refused at `rip` (a
        W^X fault the guest reported as its own abort ends with it too)."""
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
