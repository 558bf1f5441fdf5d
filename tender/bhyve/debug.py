"""What of the debug view bhyve offers: the registers dumpcore reads, one
VM_GET_REGISTER each (BHYVE_SPEC 10: dumpcore only; Solo5's FreeBSD gdb
functions fail). Breakpoints, single step and debug stops are refused in one
line, as is the stats view's host counters (vmm's are not read)."""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, NoReturn

from tender.bhyve import ioc
from tender.bhyve import structs as s
from tender.bhyve.consts import ExitCode, Reg
from tender.bhyve.host import Host
from tender.debugview import GPR_NAMES, SEG_NAMES, CpuRegs, DebugArm, FpuRegs, SegRegs
from tender.errors import DebugError

if TYPE_CHECKING:
    from tender.debugview import DebugCaps, DebugEvent
    from tender.exits import Exit
    from tender.memory import GuestMemory

NO_GDB = "--gdb: the bhyve backend has no gdb support (registers only, for --dumpcore)"
_REGS = {**{n: Reg[n.upper()] for n in (*GPR_NAMES, "rip", "rflags")},
         **{n: Reg[n.upper()] for n in SEG_NAMES},     # the selector, for a segment
         "fs_base": Reg.FS_BASE, "gs_base": Reg.GS_BASE}
_EMPTY: Mapping[str, int] = MappingProxyType({})


def _refuse() -> NoReturn:
    raise DebugError(NO_GDB)


class BhyveDebugView:
    """vCPU 0 of one VM fd, read-only."""

    no_gdb: str | None = NO_GDB

    def __init__(self, host: Host, fd: int) -> None:
        self._host = host
        self._fd = fd

    def _get(self, name: str) -> int:
        reg = _REGS[name]
        buf = bytearray(s.struct_bytes(s.VmRegister(0, reg, 0)))
        try:
            self._host.ioctl(self._fd, ioc.VM_GET_REGISTER, buf)
        except OSError as exc:
            raise DebugError(f"VM_GET_REGISTER ({int(reg)}): {exc.strerror}") from None
        (value,) = struct.unpack_from("<Q", buf, ctypes.sizeof(ctypes.c_int32) * 2)
        return int(value)

    def regs(self) -> CpuRegs:
        return CpuRegs(**{n: self._get(n) for n in (*GPR_NAMES, "rip", "rflags")})

    def segments(self) -> SegRegs:
        return SegRegs(**{n: self._get(n) for n in (*SEG_NAMES, "fs_base", "gs_base")})

    # Everything below is the gdb stub's, which bhyve does not have.
    def set_regs(self, regs: CpuRegs) -> None:
        _refuse()

    def set_bases(self, fs_base: int, gs_base: int) -> None:
        _refuse()

    def fpu(self) -> FpuRegs:
        _refuse()

    def set_fpu(self, fpu: FpuRegs) -> None:
        _refuse()

    def caps(self, mem: GuestMemory) -> DebugCaps:
        _refuse()

    def arm(self, arm: DebugArm) -> None:
        _refuse()

    def event(self, exit: Exit) -> DebugEvent | None:
        return None

    def kick_on(self, signum: int) -> None:
        _refuse()

    def close(self) -> None:
        """Nothing held."""


class BhyveStatsView:
    """No host counters (vmm's statistics are not read yet); exit counters,
    were a C loop to count them, are named by vm_exitcode."""

    unavailable: str | None = "the bhyve backend does not read vmm statistics"

    def read(self) -> tuple[Mapping[str, int], Mapping[str, int]]:
        return _EMPTY, _EMPTY

    def exit_name(self, reason: int, last: int) -> str:
        if reason >= last:
            return "other"
        try:
            return ExitCode(reason).name.lower()
        except ValueError:
            return f"exitcode_{reason}"

    def close(self) -> None:
        """Nothing held."""
