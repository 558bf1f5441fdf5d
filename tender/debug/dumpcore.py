"""--dumpcore=DIR: an ELF core file of a guest that aborted (spec 6.3).

Layout (ELF64 little-endian, ET_CORE, EM_X86_64, OSABI standalone):
Ehdr | Phdr PT_NOTE | Phdr PT_LOAD [0, M) | NT_PRSTATUS note | guest memory.
Only pages the host reports resident (mincore) are written; the rest stay
holes, so the file is sparse. Failures while dumping are warnings: the
guest's status (255) is what the process exits with."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tender.abi import PAGE_SIZE, SOLO5_EXIT_ABORT
from tender.debugview import SEG_NAMES, CpuRegs, DebugView, SegRegs
from tender.errors import DebugError
from tender.memory import GuestMemory

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")
NHDR = struct.Struct("<III")
NOTE_NAME = b"CORE\0\0\0\0"
NT_PRSTATUS = 1
PRSTATUS_SIZE = 336
PR_REG_OFFSET = 112
ET_CORE, EM_X86_64, ELFOSABI_STANDALONE = 4, 62, 255
PT_LOAD, PT_NOTE = 1, 4
NOTE_OFFSET = EHDR.size + 2 * PHDR.size                          # 176
NOTE_SIZE = NHDR.size + len(NOTE_NAME) + PRSTATUS_SIZE           # 356
MEM_OFFSET = NOTE_OFFSET + NOTE_SIZE                             # 532

# user_regs_struct, the order of pr_reg
USER_REGS = ("r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax "
             "rip cs eflags rsp ss fs_base gs_base ds es fs gs").split()
_PR_HEAD = struct.Struct("<iiih2xQQiiii64x")    # siginfo, cursig, sigpend/hold, ids, times
_PR_REGS = struct.Struct(f"<{len(USER_REGS)}Q")
assert _PR_HEAD.size == PR_REG_OFFSET
assert PR_REG_OFFSET + _PR_REGS.size + 8 == PRSTATUS_SIZE


def core_path(directory: str, pid: int) -> str:
    return os.path.join(directory, f"core.solo5-hvt.{pid}")


def check_dir(directory: str) -> None:
    """Set-up: fail at start-up, not when the guest has already crashed."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise DebugError(f"dumpcore: cannot open dir: {directory}: {exc.strerror}") from None
    os.close(fd)
    if not os.access(directory, os.W_OK):
        raise DebugError(f"dumpcore: dir not writable: {directory}")


@dataclass(frozen=True)
class CoreRegs:
    values: tuple[int, ...]        # in USER_REGS order
    signal: int


def core_regs(regs: CpuRegs, segs: SegRegs, trap_frame: tuple[int, ...] | None) -> CoreRegs:
    """Pure: the vCPU's registers at the HALT, with rip/cs/rflags/rsp/ss from
    the guest's trap frame when it gave one (they say where it faulted)."""
    v = {n: int(getattr(regs, n)) for n in
         "r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi rip rsp".split()}
    v["eflags"] = regs.rflags
    v["orig_rax"] = (1 << 64) - 1
    for seg in SEG_NAMES:
        v[seg] = int(getattr(segs, seg))
    v["fs_base"], v["gs_base"] = segs.fs_base, segs.gs_base
    sig = int(signal.SIGABRT)
    if trap_frame is not None:
        _cr2, _ec, v["rip"], v["cs"], v["eflags"], v["rsp"], v["ss"] = trap_frame
        sig = int(signal.SIGSEGV)
    return CoreRegs(tuple(v[n] & ((1 << 64) - 1) for n in USER_REGS), sig)


def headers(mem_size: int, regs: CoreRegs, pid: int) -> bytes:
    ident = b"\x7fELF" + bytes((2, 1, 1, ELFOSABI_STANDALONE)) + bytes(8)
    ehdr = EHDR.pack(ident, ET_CORE, EM_X86_64, 1, 0, EHDR.size, 0, 0,
                     EHDR.size, PHDR.size, 2, 0, 0, 0)
    note_ph = PHDR.pack(PT_NOTE, 0, NOTE_OFFSET, 0, 0, NOTE_SIZE, NOTE_SIZE, 0)
    load_ph = PHDR.pack(PT_LOAD, 0, MEM_OFFSET, 0, 0, mem_size, mem_size, 0)
    prstatus = (_PR_HEAD.pack(regs.signal, 0, 0, regs.signal, 0, 0, pid, 0, 0, 0)
                + _PR_REGS.pack(*regs.values) + bytes(8))
    note = NHDR.pack(len(NOTE_NAME), PRSTATUS_SIZE, NT_PRSTATUS) + NOTE_NAME + prstatus
    out = ehdr + note_ph + load_ph + note
    assert len(out) == MEM_OFFSET
    return out


def resident_runs(mem: GuestMemory, size: int) -> Iterator[tuple[int, int]]:
    """[start, end) runs of pages the host has resident, from mincore(2).
    Pages the guest never touched are not resident, so they are skipped."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    npages = size // PAGE_SIZE
    vec = (ctypes.c_ubyte * npages)()
    if libc.mincore(ctypes.c_void_p(mem.host_address), ctypes.c_size_t(size), vec) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    start = None
    for i in range(npages + 1):
        resident = i < npages and vec[i] & 1
        if resident and start is None:
            start = i
        elif not resident and start is not None:
            yield start * PAGE_SIZE, i * PAGE_SIZE
            start = None


class Dumpcore:
    def __init__(self, directory: str, view: DebugView, mem: GuestMemory,
                 diag: Callable[[str], None]) -> None:
        check_dir(directory)
        self.directory = directory
        self._view = view
        self._mem = mem
        self._diag = diag

    def on_halt(self, status: int, trap_frame: tuple[int, ...] | None) -> None:
        if status != SOLO5_EXIT_ABORT:
            return
        path = core_path(self.directory, os.getpid())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            self._diag(f"dumpcore: could not create {path}: {exc.strerror}")
            return
        self._diag(f"dumpcore: dumping guest core to: {path}")
        try:
            written, total = self._write(fd, trap_frame)
        except OSError as exc:
            self._diag(f"dumpcore: error writing core file: {exc.strerror}")
            return
        finally:
            os.close(fd)
        self._diag(f"dumpcore: dumped {written} pages of total {total} pages")

    def _write(self, fd: int, trap_frame: tuple[int, ...] | None) -> tuple[int, int]:
        size = self._mem.size
        regs = core_regs(self._view.regs(), self._view.segments(), trap_frame)
        os.pwrite(fd, headers(size, regs, os.getpid()), 0)
        written = 0
        for start, end in resident_runs(self._mem, size):
            view = self._mem.view[start:end]
            off = 0
            while off < len(view):
                off += os.pwrite(fd, view[off:], MEM_OFFSET + start + off)
            written += (end - start) // PAGE_SIZE
        os.ftruncate(fd, MEM_OFFSET + size)    # holes up to the end of [0, M)
        return written, size // PAGE_SIZE
