"""What a running guest is and how a run ends: the types the vCPU loop shares
with its hooks (debug tools) and with library users."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from types import MappingProxyType

from tender import abi
from tender import manifest as mft
from tender.config import VmConfig
from tender.errors import one_line
from tender.hypercalls.context import Context
from tender.hypercalls.halt import Halt
from tender.memory import GuestMemory
from tender.record import field, record

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from typing import Any, TypeAlias

Diag = Callable[[str], None]


def default_diag(msg: str) -> None:
    os.write(2, f"pytender: {one_line(msg)}\n".encode(errors="replace"))


@record(frozen=True)
class Outcome:
    """How a guest run ended (a HALT; faults are raised as TenderError)."""

    status: int                                  # as passed to HALT (i32)
    trap_frame: tuple[int, ...] | None = None    # cr2 ec rip cs rflags rsp ss
    hypercalls: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    msr_denied: int = 0                          # RDMSR/WRMSR refused by the MSR filter

    @property
    def exit_code(self) -> int:
        return self.status & 0xFF

    @property
    def aborted(self) -> bool:
        return self.exit_code == abi.SOLO5_EXIT_ABORT


@record
class RunningVm:
    """Everything that exists while a guest runs; hooks and tools see this."""

    config: VmConfig
    mem: GuestMemory
    manifest: mft.Manifest
    ctx: Context
    vcpu: Any = None
    diag: Diag = default_diag


HaltHook = Callable[[RunningVm, Halt], None]
# Sees the typed exits Retry, Interrupted and HostExit (tender.exits) before
# the loop acts on them; True claims a HostExit (e.g. the gdb stub's debug
# exit) and resumes.
ExitHook: TypeAlias = "Callable[[RunningVm, Any], bool]"    # a string: no typing.Any at run time
