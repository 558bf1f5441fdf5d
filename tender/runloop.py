"""Step 14: act on the typed exits a backend's run() returns until the guest
halts. Nothing here knows which hypervisor produced them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import MappingProxyType

from tender import abi
from tender.errors import ConsoleError, DeviceError, GuestFault, Stopped, TenderError
from tender.exits import HandlerFailed, HostExit, Hypercall, Interrupted, Kick, Retry
from tender.hypercalls import Handler
from tender.hypercalls.halt import Halt
from tender.memory import GuestMemory
from tender.record import record
from tender.session import ExitHook, HaltHook, Outcome, RunningVm

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from typing import Any

    from tender.backend import RunBackend


class StopFlag:
    """Set from any thread (Tender.stop, a signal handler), read by the loop
    between exits: threading.Event's set/is_set, without importing
    threading on the boot path (issue 10); an attribute write is atomic."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


@record(frozen=True)
class LoopHooks:
    """What the run assembly plugs into the loop."""

    stop: StopFlag
    halt: Callable[[GuestMemory, int], Halt]     # decodes HALT's argument
    halt_hooks: Sequence[HaltHook]
    exit_hooks: Sequence[ExitHook]
    # After the halt hooks: a fault line when the HALT was really a fault
    # the guest's handler reported (a W^X #PF), else None.
    fault_of: Callable[[Halt], str | None] = lambda _h: None
    # A ring kick the host reported as an exit (bhyve): wake the ring's I/O
    # side. Without a ring there is nothing to wake (solo5-hvt resumes too).
    kick: Callable[[], None] = lambda: None


def handler_error(message: str) -> TenderError:
    """A native twin's fatal message, typed as its Python twin would raise it."""
    if message.startswith("Invalid guest"):
        return GuestFault(message)
    if message.startswith(ConsoleError.PREFIX):    # csrc hc_puts
        return ConsoleError(message)
    return DeviceError(message)


def run_until_halt(backend: RunBackend, vm: RunningVm, table: dict[int, Handler],
                   hooks: LoopHooks, native: Any, counts: list[int]) -> Outcome:
    """`native`: the C side's `struct vl_vcpu` view; the hypercalls it
    served (`counts`) are added to the outcome's, with its MSR refusals.
    `counts[nr]`: the ones Python serves, kept up to date as they happen
    (the live stats read it)."""
    native_counts = native.counts

    def outcome(h: Halt) -> Outcome:
        named = {
            abi.Hypercall(nr).name.lower(): counts[nr] + native_counts[nr]
            for nr in range(1, abi.HYPERCALL_MAX + 1)
            if counts[nr] + native_counts[nr]
        }
        return Outcome(h.status, h.trap_frame, MappingProxyType(named), native.msr_denied)

    ctx = vm.ctx
    while True:
        if hooks.stop.is_set():
            raise Stopped
        ex = backend.run()
        if isinstance(ex, Hypercall):
            nr = ex.nr
            if nr == abi.Hypercall.HALT:
                counts[nr] += 1
                h = hooks.halt(vm.mem, ex.gpa)
                for hook in hooks.halt_hooks:
                    hook(vm, h)
                if (fault := hooks.fault_of(h)) is not None:
                    raise GuestFault(fault)
                return outcome(h)
            handler = table.get(nr)
            if handler is None:
                raise GuestFault(f"Invalid guest hypercall: num={nr}")
            counts[nr] += 1
            handler(ctx, ex.gpa)
        elif isinstance(ex, Retry | Interrupted):
            for xhook in hooks.exit_hooks:
                xhook(vm, ex)
            continue    # Python signal handlers run here; they raise to stop
        elif isinstance(ex, Kick):
            hooks.kick()
        elif isinstance(ex, HandlerFailed):
            raise handler_error(ex.message)
        elif isinstance(ex, HostExit) and (
                any(xhook(vm, ex) for xhook in hooks.exit_hooks) or ex.resume()):
            continue
        else:
            raise backend.exit_error(ex)
