"""Decode a struct vm_exit into the core's typed exits (BHYVE_SPEC 4.8, 7.2).

The checks run in Solo5's order: the ring kick first, then direction and
size, then the port range; so an `inl` from 0x600 is an invalid port access."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from tender import abi
from tender.backend import Exit, Fatal, Hypercall, Kick, Retry
from tender.bhyve import structs as s
from tender.bhyve.consts import ExitCode

KICK_PORT = 0x600


@dataclass(frozen=True)
class InOut:
    bytes: int
    is_in: bool
    string: bool
    rep: bool
    port: int
    eax: int


def decode_inout_bits(word: int) -> tuple[int, bool, bool, bool]:
    """The vm_inout bitfield word (LSB-first, as GCC and clang lay it out)."""
    return word & 7, bool((word >> 3) & 1), bool((word >> 4) & 1), bool((word >> 5) & 1)


def inout(buf: bytes) -> InOut:
    word, port, eax = struct.unpack_from("<HHI", buf, s.EXIT_INOUT_BITS)
    size, is_in, string, rep = decode_inout_bits(word)
    return InOut(size, is_in, string, rep, port, eax)


def vmx_dump(buf: bytes, rip: int, inst_length: int) -> tuple[str, ...]:
    status, reason, qual, itype, ierr = struct.unpack_from("<iIQii", buf, s.EXIT_VMX_STATUS)
    return ("unhandled VMX exit:", f"\trip\t\t0x{rip:016x}", f"\tinst_length\t{inst_length}",
            f"\tstatus\t\t{status}", f"\texit_reason\t{reason}",
            f"\tqualification\t0x{qual:016x}", f"\tinst_type\t{itype}",
            f"\tinst_error\t{ierr}")


def decode(buf: bytes, handled: frozenset[int] = frozenset(range(1, abi.HYPERCALL_MAX + 1))
           ) -> Exit:
    """`handled`: the hypercall numbers that have a registered handler."""
    exitcode, inst_length, rip = struct.unpack_from("<iiQ", buf, 0)
    if exitcode == ExitCode.INOUT:
        io = inout(buf)
        if io.port == KICK_PORT and not io.is_in and io.bytes == 4:
            return Kick()
        if io.is_in or io.bytes != 4 or not (
                abi.HYPERCALL_PIO_BASE <= io.port < abi.HYPERCALL_PIO_BASE + abi.HYPERCALL_MAX + 1):
            return Fatal((f"Invalid guest port access: port=0x{io.port:x}",))
        nr = io.port - abi.HYPERCALL_PIO_BASE
        if nr not in handled:
            return Fatal((f"Invalid guest hypercall: num={nr}",))
        return Hypercall(nr, io.eax)
    if exitcode == ExitCode.BOGUS and inst_length == 0:
        return Retry()
    if exitcode == ExitCode.VMX:
        return Fatal(vmx_dump(buf, rip, inst_length))
    return Fatal((f"unhandled exit: exitcode={exitcode}, rip=0x{rip:x}",))
