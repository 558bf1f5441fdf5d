"""The debug view of a vCPU: what the gdb stub and dumpcore ask of a backend.

Pure types only, no hypervisor named. A backend hands out one `DebugView`
(`RunBackend.debug_view()`); `tender/kvm/debug.py` implements it over a KVM
vCPU, and a backend without debug support refuses in one line instead.
Registers travel as frozen x86-64 records; breakpoints as the debug-register
values to load (DR0-DR3, DR7: x86's encoding, the same on every hypervisor);
a debug stop comes back as a typed `DebugEvent` decoded from the backend's
own exit. Guest addresses are guest-physical: our guests map memory 1:1.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tender.exits import Exit
    from tender.memory import GuestMemory

# rax..r15 as a CpuRegs record names them (also the gdb `g` order's GPRs).
GPR_NAMES = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
             "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
SEG_NAMES = ("cs", "ss", "ds", "es", "fs", "gs")


@dataclass(frozen=True)
class CpuRegs:
    """The general registers, rip and rflags."""

    rax: int
    rbx: int
    rcx: int
    rdx: int
    rsi: int
    rdi: int
    rbp: int
    rsp: int
    r8: int
    r9: int
    r10: int
    r11: int
    r12: int
    r13: int
    r14: int
    r15: int
    rip: int
    rflags: int


@dataclass(frozen=True)
class SegRegs:
    """Segment selectors and the two bases long mode still uses."""

    cs: int
    ss: int
    ds: int
    es: int
    fs: int
    gs: int
    fs_base: int
    gs_base: int


@dataclass(frozen=True)
class FpuRegs:
    """The x87/SSE state in FXSAVE terms: `st` holds ST(0)-ST(7) as 10-byte
    values, `ftw` the abridged (one bit per register) tag word."""

    st: tuple[bytes, ...]
    fcw: int
    fsw: int
    ftw: int
    fop: int
    fip: int        # last instruction pointer (selector << 32 | offset)
    fdp: int        # last data pointer, likewise
    xmm: tuple[bytes, ...]
    mxcsr: int


@dataclass(frozen=True)
class DebugCaps:
    """What the host really delivers (probed, not what it claims)."""

    host: str           # for messages: "KVM"
    single_step: bool
    hw_break: bool
    watch: bool
    int3: str           # "debug-exit", "emulation-failure" or "none"

    def describe(self) -> str:
        def yn(b: bool) -> str:
            return "yes" if b else "no"

        return (f"single-step {yn(self.single_step)}, hw breakpoints {yn(self.hw_break)}, "
                f"watchpoints {yn(self.watch)}, int3 breakpoints {self.int3}")


@dataclass(frozen=True)
class DebugArm:
    """How the vCPU runs next. All zero/False: no debugging at all."""

    step: bool = False
    sw: bool = False                            # an int3 of ours may be in guest text
    addrs: tuple[int, int, int, int] = (0, 0, 0, 0)   # DR0-DR3
    dr7: int = 0

    @property
    def off(self) -> bool:
        return not (self.step or self.sw or self.dr7)


class DebugEventKind(enum.Enum):
    BREAKPOINT = "breakpoint"   # #BP: an int3 ran
    TRAP = "trap"               # #DB: a single step or a debug register fired (see dr6)
    STUCK = "stuck"             # the host could not run the instruction at rip
                                # (kvm_pvm runs no int3): ours if it is our int3
    CRASH = "crash"             # the vCPU cannot go on (entry failure, internal error)


@dataclass(frozen=True)
class DebugEvent:
    """A backend exit as the debugger reads it."""

    kind: DebugEventKind
    dr6: int = 0


class DebugView(Protocol):
    """One vCPU, stopped whenever these are called (the vCPU thread calls
    them between runs). A view with `no_gdb` set offers only regs() and
    segments() (what dumpcore reads); the rest raise DebugError."""

    # Why the gdb stub cannot drive this host (one line), or None.
    no_gdb: str | None

    def regs(self) -> CpuRegs: ...
    def set_regs(self, regs: CpuRegs) -> None: ...
    def segments(self) -> SegRegs: ...

    def set_bases(self, fs_base: int, gs_base: int) -> None:
        """Selectors are never written: in long mode a selector change would
        need a matching descriptor."""
        ...

    def fpu(self) -> FpuRegs: ...
    def set_fpu(self, fpu: FpuRegs) -> None: ...

    def caps(self, mem: GuestMemory) -> DebugCaps:
        """Probe the host before the guest's first instruction; puts back
        every register and byte it touches. Never raises: unknown is "no"."""
        ...

    def arm(self, arm: DebugArm) -> None: ...

    def event(self, exit: Exit) -> DebugEvent | None:
        """A debug meaning of `exit`, or None when it has none."""
        ...

    def kick_on(self, signum: int) -> None:
        """After this, `signum` sent to the vCPU thread makes a blocked run
        return at once (gdb's Ctrl-C), even if it lands just before entry."""
        ...

    def close(self) -> None: ...
