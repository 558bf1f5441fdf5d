"""The debuggee as the gdb stub sees it: registers, memory, breakpoints and
KVM_SET_GUEST_DEBUG, over one vCPU and its guest memory.

Software breakpoints patch `int3` into guest text. The host mapping of text
is read-only (so the guest cannot write it), so patching briefly makes the
affected pages writable from the tender and then read-only again; the guest
is stopped meanwhile, so it never sees a writable text page."""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from tender.abi import PAGE_SIZE
from tender.debug.probe import DebugCaps
from tender.debug.regs import FPU_CTRL, GPRS, SEGS, RegFile, abridged_ftag, full_ftag
from tender.errors import HostError
from tender.kvm import ioctls as k
from tender.memory import GuestMemory

INT3 = 0xCC
MAX_HW = 4                         # DR0-DR3
DR6_HIT_MASK = 0xF                 # B0-B3: which debug register fired
DR6_BS = 1 << 14                   # single step
EXC_DB = 1
EXC_BP = 3
KVM_INTERNAL_ERROR_EMULATION = 1
# struct kvm_debug_exit_arch inside kvm_run's exit union (offset 32)
_DEBUG_EXIT = struct.Struct("<IIQQQ")      # exception pad pc dr6 dr7
_RUN_EXIT_UNION = 32


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
    def __init__(self, vcpu: Any, mem: GuestMemory, caps: DebugCaps) -> None:
        self.vcpu = vcpu
        self.mem = mem
        self.caps = caps
        self.sw: dict[int, int] = {}                 # addr -> original byte
        self.hw: list[HwPoint | None] = [None] * MAX_HW

    # --- registers ---------------------------------------------------------
    def read_regs(self) -> RegFile:
        r = self.vcpu.get_regs()
        s = self.vcpu.get_sregs()
        f = self.vcpu.get_fpu()
        vals: list[tuple[str, int | bytes]] = [(n, int(getattr(r, n))) for n in GPRS]
        vals.append(("rip", int(r.rip)))
        vals.append(("eflags", int(r.rflags) & 0xFFFFFFFF))
        vals += [(n, int(getattr(s, n).selector)) for n in SEGS]
        st = [bytes(f.fpr[i])[:10] for i in range(8)]
        vals += [(f"st{i}", st[i]) for i in range(8)]
        ctrl = (
            f.fcw, f.fsw, full_ftag(f.ftwx, f.fsw, st),
            (f.last_ip >> 32) & 0xFFFF, f.last_ip & 0xFFFFFFFF,
            (f.last_dp >> 32) & 0xFFFF, f.last_dp & 0xFFFFFFFF, f.last_opcode,
        )
        vals += list(zip(FPU_CTRL, (int(x) for x in ctrl), strict=True))
        vals += [(f"xmm{i}", bytes(f.xmm[i])) for i in range(16)]
        vals.append(("mxcsr", int(f.mxcsr)))
        vals += [("fs_base", int(s.fs.base)), ("gs_base", int(s.gs.base))]
        return RegFile(tuple(vals))

    def write_regs(self, rf: RegFile) -> None:
        """Segment selectors are not written: in long mode a selector change
        would need a matching descriptor, and no guest of ours wants one."""
        v = dict(rf.values)
        r = self.vcpu.get_regs()
        for n in GPRS:
            setattr(r, n, _int(v[n]))
        r.rip = _int(v["rip"])
        r.rflags = (r.rflags & ~0xFFFFFFFF) | _int(v["eflags"])
        self.vcpu.set_regs(r)
        s = self.vcpu.get_sregs()
        if (s.fs.base, s.gs.base) != (v["fs_base"], v["gs_base"]):
            s.fs.base, s.gs.base = _int(v["fs_base"]), _int(v["gs_base"])
            self.vcpu.set_sregs(s)
        f = self.vcpu.get_fpu()
        for i in range(8):
            raw = _bytes(v[f"st{i}"])
            for j in range(10):
                f.fpr[i][j] = raw[j]
        f.fcw, f.fsw = _int(v["fctrl"]) & 0xFFFF, _int(v["fstat"]) & 0xFFFF
        f.ftwx = abridged_ftag(_int(v["ftag"]))
        f.last_opcode = _int(v["fop"]) & 0x7FF
        f.last_ip = (_int(v["fiseg"]) << 32) | _int(v["fioff"])
        f.last_dp = (_int(v["foseg"]) << 32) | _int(v["fooff"])
        for i in range(16):
            raw = _bytes(v[f"xmm{i}"])
            for j in range(16):
                f.xmm[i][j] = raw[j]
        f.mxcsr = _int(v["mxcsr"])
        self.vcpu.set_fpu(f)

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

    # --- KVM_SET_GUEST_DEBUG ---------------------------------------------------
    def arm(self, step: bool) -> None:
        """Program the vCPU for the next run. Off entirely when nothing is
        set, so a detached or idle stub costs nothing."""
        dbg = k.GuestDebug()
        dr7 = 0
        for i, p in enumerate(self.hw):
            if p is None or p in self.soft_watch:
                continue
            dbg.debugreg[i] = p.addr
            dr7 |= (1 << (2 * i)) | (_DR7_RW[p.kind] << (16 + 4 * i))
            dr7 |= _DR7_LEN[p.length] << (18 + 4 * i)
        control = 0
        if step or self.sw or dr7:
            control = k.GUESTDBG_ENABLE | k.GUESTDBG_USE_SW_BP
            control |= k.GUESTDBG_SINGLESTEP if step else 0
            control |= k.GUESTDBG_USE_HW_BP if dr7 else 0
        dbg.control = control
        dbg.debugreg[7] = dr7
        self.vcpu.set_guest_debug(dbg)

    def can_hw(self, kind: HwKind) -> bool:
        if kind is HwKind.EXEC:
            return self.caps.hw_break
        if kind is HwKind.WRITE:
            return self.caps.watch or self.caps.single_step    # soft: see below
        return self.caps.watch

    @property
    def soft_watch(self) -> list[HwPoint]:
        """Write watchpoints KVM will not fire (kvm_pvm): the stub emulates
        them by single-stepping and comparing the watched bytes."""
        if self.caps.watch:
            return []
        return [p for p in self.hw if p is not None and p.kind is HwKind.WRITE]

    # --- classifying a stop ------------------------------------------------
    def debug_stop(self, run_area: Any) -> Stop:
        """A KVM_EXIT_DEBUG: which of our breakpoints, watchpoints or the
        single step caused it."""
        exc, _, _pc, dr6, _dr7 = _DEBUG_EXIT.unpack_from(run_area, _RUN_EXIT_UNION)
        if exc == EXC_BP:
            return Stop(5, "swbreak")
        if exc == EXC_DB and dr6 & DR6_HIT_MASK:
            for i in range(MAX_HW):
                p = self.hw[i]
                if dr6 & (1 << i) and p is not None:
                    if p.kind is HwKind.EXEC:
                        return Stop(5, "hwbreak")
                    reason = {HwKind.WRITE: "watch", HwKind.READ: "rwatch",
                              HwKind.ACCESS: "awatch"}[p.kind]
                    return Stop(5, reason, p.addr)
        return Stop(5)

    def int3_stop(self, suberror: int) -> Stop | None:
        """kvm_pvm cannot run a guest int3 (with or without USE_SW_BP): KVM_RUN
        ends in an emulation-failure internal error with rip at the int3. If
        that int3 is one of ours, it is a breakpoint hit."""
        if suberror != KVM_INTERNAL_ERROR_EMULATION or not self.sw:
            return None
        rip = int(self.vcpu.get_regs().rip)
        return Stop(5, "swbreak") if rip in self.sw else None


def _int(v: int | bytes) -> int:
    if isinstance(v, bytes):
        raise ValueError("expected an integer register")
    return v


def _bytes(v: int | bytes) -> bytes:
    if isinstance(v, int):
        raise ValueError("expected a byte register")
    return v
