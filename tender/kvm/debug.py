"""The KVM half of the debug view (tender.debugview.DebugView) over VcpuFd.

Registers go through KVM_GET/SET_REGS, SREGS and FPU; breakpoints and the
single step through KVM_SET_GUEST_DEBUG; a debug stop is read from
kvm_run's exit union. Imported only when --gdb or --dumpcore asks for it."""

from __future__ import annotations

import struct
from typing import Any

from tender.debugview import (
    GPR_NAMES,
    CpuRegs,
    DebugArm,
    DebugCaps,
    DebugEvent,
    DebugEventKind,
    FpuRegs,
    SegRegs,
)
from tender.exits import Exit
from tender.kvm import ioctls as k
from tender.kvm.backend import KvmExit
from tender.kvm.vcpu import VcpuFd
from tender.memory import GuestMemory

EXC_DB = 1                         # x86 exception vectors
EXC_BP = 3
INTERNAL_ERROR_EMULATION = k.INTERNAL_ERROR_EMULATION      # kvm_run.internal.suberror
# struct kvm_debug_exit_arch (exception pad pc dr6 dr7), parsed from the run
# page's bytes; test_kvm_header holds the format to <linux/kvm.h>, and its
# offset inside kvm_run's anonymous exit union is the compiler's.
DEBUG_EXIT = struct.Struct("<IIQQQ")
RUN_EXIT_UNION = k.RUN_DEBUG_EXIT_OFFSET
_REG_NAMES = (*GPR_NAMES, "rip", "rflags")


def guest_debug(arm: DebugArm) -> k.GuestDebug:
    """struct kvm_guest_debug for `arm`; all off when nothing is set, so a
    detached or idle stub costs nothing."""
    dbg = k.GuestDebug()
    if not arm.off:
        control = k.GUESTDBG_ENABLE | k.GUESTDBG_USE_SW_BP
        control |= k.GUESTDBG_SINGLESTEP if arm.step else 0
        control |= k.GUESTDBG_USE_HW_BP if arm.dr7 else 0
        dbg.control = control
    for i, addr in enumerate(arm.addrs):
        dbg.debugreg[i] = addr
    dbg.debugreg[7] = arm.dr7
    return dbg


def decode_debug_exit(run_area: Any) -> DebugEvent:
    """Pure: a KVM_EXIT_DEBUG's exception and DR6 from the run page."""
    exc, _, _pc, dr6, _dr7 = DEBUG_EXIT.unpack_from(run_area, RUN_EXIT_UNION)
    if exc == EXC_BP:
        return DebugEvent(DebugEventKind.BREAKPOINT)
    return DebugEvent(DebugEventKind.TRAP, dr6 if exc == EXC_DB else 0)


class KvmDebugView:
    no_gdb: str | None = None

    def __init__(self, vcpu: VcpuFd) -> None:
        self._vcpu = vcpu
        self._run_ptr: Any = None

    # --- registers ---------------------------------------------------------
    def regs(self) -> CpuRegs:
        r = self._vcpu.get_regs()
        return CpuRegs(**{n: int(getattr(r, n)) for n in _REG_NAMES})

    def set_regs(self, regs: CpuRegs) -> None:
        r = self._vcpu.get_regs()
        for n in _REG_NAMES:
            setattr(r, n, getattr(regs, n))
        self._vcpu.set_regs(r)

    def segments(self) -> SegRegs:
        s = self._vcpu.get_sregs()
        return SegRegs(int(s.cs.selector), int(s.ss.selector), int(s.ds.selector),
                       int(s.es.selector), int(s.fs.selector), int(s.gs.selector),
                       int(s.fs.base), int(s.gs.base))

    def set_bases(self, fs_base: int, gs_base: int) -> None:
        s = self._vcpu.get_sregs()
        s.fs.base, s.gs.base = fs_base, gs_base
        self._vcpu.set_sregs(s)

    def fpu(self) -> FpuRegs:
        f = self._vcpu.get_fpu()
        return FpuRegs(
            st=tuple(bytes(f.fpr[i])[:10] for i in range(8)),
            fcw=int(f.fcw), fsw=int(f.fsw), ftw=int(f.ftwx), fop=int(f.last_opcode),
            fip=int(f.last_ip), fdp=int(f.last_dp),
            xmm=tuple(bytes(f.xmm[i]) for i in range(16)), mxcsr=int(f.mxcsr),
        )

    def set_fpu(self, fpu: FpuRegs) -> None:
        f = self._vcpu.get_fpu()
        for i in range(8):
            for j in range(10):
                f.fpr[i][j] = fpu.st[i][j]
        f.fcw, f.fsw, f.ftwx = fpu.fcw, fpu.fsw, fpu.ftw
        f.last_opcode, f.last_ip, f.last_dp = fpu.fop, fpu.fip, fpu.fdp
        for i in range(16):
            for j in range(16):
                f.xmm[i][j] = fpu.xmm[i][j]
        f.mxcsr = fpu.mxcsr
        self._vcpu.set_fpu(f)

    # --- debugging ---------------------------------------------------------
    def caps(self, mem: GuestMemory) -> DebugCaps:
        from tender.kvm.probe import probe

        return probe(self._vcpu, mem)

    def arm(self, arm: DebugArm) -> None:
        self._vcpu.set_guest_debug(guest_debug(arm))

    def event(self, exit: Exit) -> DebugEvent | None:
        if not isinstance(exit, KvmExit):
            return None
        r = exit.reason
        if r == k.EXIT_DEBUG:
            return decode_debug_exit(self._vcpu.run_area)
        if r == k.EXIT_INTERNAL_ERROR and exit.suberror == INTERNAL_ERROR_EMULATION:
            # kvm_pvm cannot run a guest int3 (with or without USE_SW_BP):
            # KVM_RUN ends in an emulation failure with rip at the int3.
            return DebugEvent(DebugEventKind.STUCK)
        if r in (k.EXIT_INTERNAL_ERROR, k.EXIT_FAIL_ENTRY):
            return DebugEvent(DebugEventKind.CRASH)
        return None

    def kick_on(self, signum: int) -> None:
        from tender._vcpu import ffi, lib

        if self._run_ptr is None:
            self._run_ptr = ffi.from_buffer(self._vcpu.run_area)
        # Its handler sets kvm_run.immediate_exit, so KVM_RUN returns EINTR
        # whether the guest is inside it yet or not.
        lib.vl_install_kick(self._run_ptr, signum)

    def close(self) -> None:
        if self._run_ptr is not None:
            from tender._vcpu import ffi

            ffi.release(self._run_ptr)
            self._run_ptr = None
