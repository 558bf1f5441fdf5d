"""The debuggee as the gdb stub sees it: registers, memory, breakpoints and
the debug registers, over a backend's debug view of one vCPU (its KVM half
is tender/kvm/debug.py) and its guest memory.

Software breakpoints patch `int3` into guest text. The host mapping of text
is read-only (so the guest cannot write it), so patching briefly makes the
affected pages writable from the tender and then read-only again; the guest
is stopped meanwhile, so it never sees a writable text page."""

from __future__ import annotations

import dataclasses
import mmap
from dataclasses import dataclass
from enum import IntEnum

from tender.abi import PAGE_SIZE
from tender.debug.regs import FPU_CTRL, GPRS, SEGS, RegFile, abridged_ftag, full_ftag
from tender.debugview import DebugArm, DebugCaps, DebugEvent, DebugEventKind, DebugView, FpuRegs
from tender.errors import HostError
from tender.memory import GuestMemory

INT3 = 0xCC
MAX_HW = 4                         # DR0-DR3
DR6_HIT_MASK = 0xF                 # B0-B3: which debug register fired
DR6_BS = 1 << 14                   # single step


class HwKind(IntEnum):
    """gdb Z-packet types 1-4."""

    EXEC = 1
    WRITE = 2
    READ = 3
    ACCESS = 4


# DR7 R/W field; x86 has no read-only watch, so reads use read/write (as
# Linux does) and gdb tells reads from writes by comparing values.
_DR7_RW = {HwKind.EXEC: 0b00, HwKind.WRITE: 0b01, HwKind.READ: 0b11, HwKind.ACCESS: 0b11}
_DR7_LEN = {1: 0b00, 2: 0b01, 4: 0b11, 8: 0b10}


@dataclass(frozen=True)
class HwPoint:
    kind: HwKind
    addr: int
    length: int


@dataclass(frozen=True)
class Stop:
    """Why the guest stopped: signal number plus the gdb stop-reason pair."""

    signal: int
    reason: str = ""            # "swbreak", "hwbreak", "watch", "rwatch", "awatch"
    addr: int | None = None     # watched data address for watchpoints


class Target:
    def __init__(self, view: DebugView, mem: GuestMemory, caps: DebugCaps) -> None:
        self.view = view
        self.mem = mem
        self.caps = caps
        self.sw: dict[int, int] = {}                 # addr -> original byte
        self.hw: list[HwPoint | None] = [None] * MAX_HW

    # --- registers ---------------------------------------------------------
    def read_regs(self) -> RegFile:
        r = self.view.regs()
        s = self.view.segments()
        f = self.view.fpu()
        vals: list[tuple[str, int | bytes]] = [(n, getattr(r, n)) for n in GPRS]
        vals.append(("rip", r.rip))
        vals.append(("eflags", r.rflags & 0xFFFFFFFF))
        vals += [(n, getattr(s, n)) for n in SEGS]
        st = list(f.st)
        vals += [(f"st{i}", st[i]) for i in range(8)]
        ctrl = (
            f.fcw, f.fsw, full_ftag(f.ftw, f.fsw, st),
            (f.fip >> 32) & 0xFFFF, f.fip & 0xFFFFFFFF,
            (f.fdp >> 32) & 0xFFFF, f.fdp & 0xFFFFFFFF, f.fop,
        )
        vals += list(zip(FPU_CTRL, ctrl, strict=True))
        vals += [(f"xmm{i}", f.xmm[i]) for i in range(16)]
        vals.append(("mxcsr", f.mxcsr))
        vals += [("fs_base", s.fs_base), ("gs_base", s.gs_base)]
        return RegFile(tuple(vals))

    def write_regs(self, rf: RegFile) -> None:
        """Segment selectors are not written: in long mode a selector change
        would need a matching descriptor, and no guest of ours wants one."""
        v = dict(rf.values)
        r = self.view.regs()
        gprs = {n: _int(v[n]) for n in GPRS}
        rflags = (r.rflags & ~0xFFFFFFFF) | _int(v["eflags"])
        self.view.set_regs(dataclasses.replace(r, **gprs, rip=_int(v["rip"]), rflags=rflags))
        s = self.view.segments()
        if (s.fs_base, s.gs_base) != (v["fs_base"], v["gs_base"]):
            self.view.set_bases(_int(v["fs_base"]), _int(v["gs_base"]))
        self.view.set_fpu(FpuRegs(
            st=tuple(_bytes(v[f"st{i}"])[:10] for i in range(8)),
            fcw=_int(v["fctrl"]) & 0xFFFF, fsw=_int(v["fstat"]) & 0xFFFF,
            ftw=abridged_ftag(_int(v["ftag"])), fop=_int(v["fop"]) & 0x7FF,
            fip=(_int(v["fiseg"]) << 32) | _int(v["fioff"]),
            fdp=(_int(v["foseg"]) << 32) | _int(v["fooff"]),
            xmm=tuple(_bytes(v[f"xmm{i}"])[:16] for i in range(16)), mxcsr=_int(v["mxcsr"]),
        ))

    # --- memory ------------------------------------------------------------
    def _in_ram(self, addr: int, length: int) -> bool:
        return 0 <= addr and 0 <= length and addr + length <= self.mem.size

    def read_mem(self, addr: int, length: int) -> bytes | None:
        if not self._in_ram(addr, length):
            return None
        data = bytearray(self.mem.view[addr : addr + length])
        # gdb must see the guest's own bytes, not our int3s.
        for bp, orig in self.sw.items():
            if addr <= bp < addr + length:
                data[bp - addr] = orig
        return bytes(data)

    def write_mem(self, addr: int, data: bytes) -> bool:
        if not self._in_ram(addr, len(data)):
            return False
        # Keep our int3s in place under a gdb write; remember the new byte.
        patched = bytearray(data)
        for bp in self.sw:
            if addr <= bp < addr + len(data):
                self.sw[bp] = patched[bp - addr]
                patched[bp - addr] = INT3
        self._poke(addr, bytes(patched))
        return True

    def _poke(self, addr: int, data: bytes) -> None:
        from tender._vcpu import ffi, lib

        end = addr + len(data)
        ro = [(max(s, addr), min(e, end)) for s, e in self.mem.read_only if s < end and addr < e]
        pages = [(s // PAGE_SIZE * PAGE_SIZE, -(-e // PAGE_SIZE) * PAGE_SIZE) for s, e in ro]

        def prot(start: int, stop: int, p: int) -> None:
            ptr = ffi.cast("void *", self.mem.host_address + start)
            if lib.vl_mprotect(ptr, stop - start, p):
                raise HostError("gdb: mprotect of guest text failed")

        for s, e in pages:
            prot(s, e, mmap.PROT_READ | mmap.PROT_WRITE)
        try:
            self.mem.view[addr:end] = data
        finally:
            for s, e in pages:
                prot(s, e, mmap.PROT_READ)

    # --- breakpoints -------------------------------------------------------
    def insert_sw(self, addr: int) -> bool:
        if addr in self.sw:
            return True
        if not self._in_ram(addr, 1):
            return False
        self.sw[addr] = self.mem.view[addr]
        self._poke(addr, bytes((INT3,)))
        return True

    def remove_sw(self, addr: int) -> bool:
        orig = self.sw.pop(addr, None)
        if orig is None:
            return False
        self._poke(addr, bytes((orig,)))
        return True

    def insert_hw(self, kind: HwKind, addr: int, length: int) -> bool:
        if kind is HwKind.EXEC:
            length = 1
        if length not in _DR7_LEN or addr % length:
            return False
        point = HwPoint(kind, addr, length)
        if point in self.hw:
            return True
        if None not in self.hw:
            return False
        self.hw[self.hw.index(None)] = point
        return True

    def remove_hw(self, kind: HwKind, addr: int, length: int) -> bool:
        if kind is HwKind.EXEC:
            length = 1
        point = HwPoint(kind, addr, length)
        if point not in self.hw:
            return False
        self.hw[self.hw.index(point)] = None
        return True

    def clear_all(self) -> None:
        for addr in list(self.sw):
            self.remove_sw(addr)
        self.hw = [None] * MAX_HW

    # --- the debug registers ---------------------------------------------------
    def arm(self, step: bool) -> None:
        """Program the vCPU for the next run (the backend turns debugging off
        entirely when nothing is set, so a detached or idle stub costs nothing)."""
        addrs = [0] * MAX_HW
        dr7 = 0
        for i, p in enumerate(self.hw):
            if p is None or p in self.soft_watch:
                continue
            addrs[i] = p.addr
            dr7 |= (1 << (2 * i)) | (_DR7_RW[p.kind] << (16 + 4 * i))
            dr7 |= _DR7_LEN[p.length] << (18 + 4 * i)
        a0, a1, a2, a3 = addrs
        self.view.arm(DebugArm(step, bool(self.sw), (a0, a1, a2, a3), dr7))

    def can_hw(self, kind: HwKind) -> bool:
        if kind is HwKind.EXEC:
            return self.caps.hw_break
        if kind is HwKind.WRITE:
            return self.caps.watch or self.caps.single_step    # soft: see below
        return self.caps.watch

    @property
    def soft_watch(self) -> list[HwPoint]:
        """Write watchpoints the host will not fire (kvm_pvm): the stub emulates
        them by single-stepping and comparing the watched bytes."""
        if self.caps.watch:
            return []
        return [p for p in self.hw if p is not None and p.kind is HwKind.WRITE]

    # --- classifying a stop ------------------------------------------------
    def debug_stop(self, event: DebugEvent) -> Stop:
        """A BREAKPOINT or TRAP event: which of our breakpoints, watchpoints
        or the single step caused it."""
        dr6 = event.dr6
        if event.kind is DebugEventKind.BREAKPOINT:
            return Stop(5, "swbreak")
        if dr6 & DR6_HIT_MASK:
            for i in range(MAX_HW):
                p = self.hw[i]
                if dr6 & (1 << i) and p is not None:
                    if p.kind is HwKind.EXEC:
                        return Stop(5, "hwbreak")
                    reason = {HwKind.WRITE: "watch", HwKind.READ: "rwatch",
                              HwKind.ACCESS: "awatch"}[p.kind]
                    return Stop(5, reason, p.addr)
        return Stop(5)

    def int3_stop(self) -> Stop | None:
        """A STUCK event (the host could not run the instruction at rip; kvm_pvm
        runs no int3): if that is one of our int3s, it is a breakpoint hit."""
        if not self.sw:
            return None
        return Stop(5, "swbreak") if self.view.regs().rip in self.sw else None


def _int(v: int | bytes) -> int:
    if isinstance(v, bytes):
        raise ValueError("expected an integer register")
    return v


def _bytes(v: int | bytes) -> bytes:
    if isinstance(v, int):
        raise ValueError("expected a byte register")
    return v
