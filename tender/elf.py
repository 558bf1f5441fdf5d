"""Guest ELF parsing (HVT_SPEC.md section 2): pure, bytes in, frozen data out.

Everything is driven by the program headers; section headers are never read.
Any input, however malformed, yields either a result or an `ElfError` carrying
the one-line message the user sees (prefixed with the file name).

`tender.elfwire` decodes the two fixed records (struct on the boot path,
pyelftools with `reference=True`); all range and overflow checks are done
here on Python ints, with u64 semantics where the reference tender relies
on unsigned wrap-around detection.
"""

from __future__ import annotations

import os
import stat
import weakref

from tender import abi, elfwire
from tender.errors import ElfError
from tender.record import record

__all__ = [
    "AbiNote",
    "KernelFile",
    "LoadPlan",
    "Notes",
    "Segment",
    "open_kernel",
    "plan_load",
    "read_file",
    "read_notes",
]

EHDR_SIZE = 64
PHDR_SIZE = 56
NHDR_SIZE = 12                  # Elf64_Nhdr: namesz, descsz, type
NOTE_HEAD_SIZE = 20             # Nhdr + name[8] ("Solo5\0" padded to 8)
PF_X = 1
PF_W = 2
PF_R = 4
U64_MAX = (1 << 64) - 1

_HDR_NOTE = "elf header invalid while loading note"
_HDR_LOAD = "elf header invalid while loading"


@record(frozen=True)
class AbiNote:
    """The ABI1 note payload."""

    target: int
    version: int


@record(frozen=True)
class Segment:
    """One PT_LOAD that gets loaded (p_filesz != 0), already validated."""

    index: int          # program header index
    vaddr: int
    offset: int
    filesz: int
    memsz: int
    flags: int          # PF_X=1 PF_W=2 PF_R=4
    start: int          # vaddr & -align (page aligned)
    end: int            # alignup(vaddr + memsz, align) (page aligned)


@record(frozen=True)
class Notes:
    """The two Solo5 notes of a binary, ABI already checked for hvt."""

    abi: AbiNote
    manifest_payload: bytes     # 8 + 104*E bytes (after the 4 padding bytes)


@record(frozen=True)
class LoadPlan:
    """What the loader copies: entry point, loaded segments, kernel_end."""

    entry: int
    segments: tuple[Segment, ...]
    kernel_end: int             # max page-aligned end; excludes filesz==0 (bss)


@record(frozen=True)
class _Phdr:
    """A decoded program header, unchecked."""

    index: int
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int
    align: int


@record(frozen=True)
class _Header:
    """The entry point and program headers, unchecked."""

    entry: int
    phdrs: tuple[_Phdr, ...]


# --------------------------------------------------------------------------
# helpers


# No loadable guest can be larger than the largest guest memory.
MAX_FILE_SIZE = abi.MAX_MEM


def read_file(path: str) -> bytes:
    """The whole guest binary (tooling and tests; the boot path uses
    open_kernel and reads only what the headers name)."""
    kernel = open_kernel(path)
    try:
        if len(kernel) > MAX_FILE_SIZE:
            raise ElfError(f"{path}: invalid executable: file too large")
        return kernel[:]
    finally:
        kernel.close()


class KernelFile:
    """A guest binary read on demand with pread: the loader touches only the
    headers, the notes and the PT_LOAD file ranges, so a large (even sparse)
    file costs no more than a small one. Slices read the file; the fd closes
    with the object (or close())."""

    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self._size = size
        self._finalizer = weakref.finalize(self, os.close, fd)

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, s: slice) -> bytes:
        start, stop, _ = s.indices(self._size)
        out = bytearray()
        while start + len(out) < stop:
            chunk = os.pread(self._fd, stop - start - len(out), start + len(out))
            if not chunk:
                break       # the file shrank under us: the caller sees a short read
            out += chunk
        return bytes(out)

    def close(self) -> None:
        self._finalizer()


# What the loader reads: the bytes of a binary, or the file itself.
Source = bytes | KernelFile


def open_kernel(path: str) -> KernelFile:
    """Open the guest binary for the loader: regular files only (a device or
    FIFO would never end). Unlike read_file, any size: only what the ELF
    headers name is ever read, and plan_load bounds that by guest memory."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        reason = e.strerror if e.strerror else str(e)
        raise ElfError(f"{path}: Could not open: {reason}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ElfError(f"{path}: Could not open: not a regular file")
    return KernelFile(fd, st.st_size)


def _invalid(path: str, what: str) -> ElfError:
    return ElfError(f"{path}: invalid executable: {what}")


def _bad_header(path: str, context: str) -> ElfError:
    return _invalid(path, f"invalid or unsupported executable ({context})")


def _parse_header(data: Source, path: str, context: str, reference: bool = False) -> _Header:
    """Spec 2.1: header checks and the program header table."""
    if len(data) < EHDR_SIZE:
        raise _bad_header(path, context)
    ident = data[:16]
    if ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
        raise _bad_header(path, context)
    try:
        e_type, e_machine, e_version, entry, phoff, ehsize, phentsize, phnum = elfwire.ehdr(
            data[:EHDR_SIZE], reference
        )
        ok = (
            e_version == 1
            and ehsize == EHDR_SIZE
            and phentsize == PHDR_SIZE
            and phnum >= 1
            and e_type == 2           # ET_EXEC
            and e_machine == 62       # EM_X86_64
        )
        if not ok:
            raise _bad_header(path, context)
        if phoff + phnum * PHDR_SIZE > len(data):
            raise _bad_header(path, context)
        phdrs: list[_Phdr] = []
        for i in range(phnum):
            off = phoff + i * PHDR_SIZE
            ptype, flags, offset, vaddr, filesz, memsz, align = elfwire.phdr(
                data[off:off + PHDR_SIZE], reference
            )
            phdrs.append(_Phdr(index=i, type=ptype, flags=flags, offset=offset, vaddr=vaddr,
                               filesz=filesz, memsz=memsz, align=align))
        return _Header(entry=entry, phdrs=tuple(phdrs))
    except ElfError:
        raise
    except OSError as e:
        # The host failed (EIO from a read; EMFILE while the reference decoder
        # imports pyelftools), not the file: say so rather than call a good
        # binary invalid.
        raise ElfError(f"{path}: Could not read: {e.strerror or e}") from None
    except Exception:  # any struct / pyelftools failure on hostile input
        raise _bad_header(path, context) from None


def _read(data: Source, offset: int, size: int) -> bytes | None:
    """pread semantics with a short read treated as failure."""
    if offset < 0 or size < 0 or offset + size > len(data):
        return None
    return data[offset:offset + size]


def _alignup(value: int, align: int) -> int:
    return (value + align - 1) & -align


# --------------------------------------------------------------------------
# notes (spec 2.5)

PT_LOAD = 1
PT_NOTE = 4


def _find_note(
    data: Source, path: str, hdr: _Header, note_type: int, align: int, max_desc: int
) -> bytes | None:
    for ph in hdr.phdrs:
        if ph.type != PT_NOTE:
            continue
        bad = _invalid(path, f"phdr[{ph.index}] note does not fall within valid size")
        if ph.filesz < NHDR_SIZE:
            raise bad
        if ph.filesz < NOTE_HEAD_SIZE:
            continue
        head = _read(data, ph.offset, NOTE_HEAD_SIZE)
        if head is None:
            raise _invalid(path, f"phdr[{ph.index}] note could not be read (short read)")
        namesz = int.from_bytes(head[0:4], "little")
        descsz = int.from_bytes(head[4:8], "little")
        ntype = int.from_bytes(head[8:12], "little")
        if namesz != len(abi.NOTE_NAME) or head[12:18] != abi.NOTE_NAME or ntype != note_type:
            continue
        if descsz < 1 or descsz > max_desc:
            raise bad
        if ph.filesz < NOTE_HEAD_SIZE + descsz:
            raise bad
        off = _alignup(NOTE_HEAD_SIZE, align)
        n = descsz - (off - NOTE_HEAD_SIZE)
        if n < 0:       # unsigned underflow upstream
            raise ElfError(
                f"{path}: INV_EXE: phdr[{ph.index}] note does not fall within valid size "
                f"(descsz {descsz} < padding {off - NOTE_HEAD_SIZE})"
            )
        payload = _read(data, ph.offset + off, n)
        if payload is None:
            raise _invalid(path, f"phdr[{ph.index}] note could not be read (short read)")
        return payload
    return None


def read_notes(data: Source, path: str, *, reference: bool = False) -> Notes:
    """Find and check the ABI1 and MFT1 notes, in the order solo5-hvt does.

    The manifest payload is returned undecoded (see `tender.manifest.decode`).
    `reference` decodes the headers with pyelftools (tooling, tests).
    """
    hdr = _parse_header(data, path, _HDR_NOTE, reference)
    abi_payload = _find_note(
        data, path, hdr, abi.NOTE_TYPE_ABI, abi.ABI_NOTE_ALIGN, abi.ABI_NOTE_MAX
    )
    if abi_payload is None:
        raise ElfError(f"{path}: No Solo5 ABI information found in executable")
    # A payload shorter than target+version reads as zeros (upstream would read
    # past its buffer); the target check then rejects it.
    raw = abi_payload[:8].ljust(8, b"\x00")
    note = AbiNote(
        target=int.from_bytes(raw[0:4], "little"),
        version=int.from_bytes(raw[4:8], "little"),
    )
    if note.target != abi.HVT_ABI_TARGET:
        raise ElfError(f"{path}: Executable is not for the solo5-hvt target")
    if note.version != abi.HVT_ABI_VERSION:
        raise ElfError(f"{path}: Executable requests unsupported ABI version {note.version}")
    mft_payload = _find_note(
        data, path, hdr, abi.NOTE_TYPE_MFT, abi.MFT_NOTE_ALIGN, abi.MFT_NOTE_MAX
    )
    if mft_payload is None:
        raise ElfError(f"{path}: No Solo5 manifest found in executable")
    return Notes(abi=note, manifest_payload=mft_payload)


# --------------------------------------------------------------------------
# loading (spec 2.2, 2.4)


def plan_load(data: Source, path: str, mem_size: int, *, reference: bool = False) -> LoadPlan:
    """Validate every PT_LOAD against a guest of `mem_size` bytes (the whole
    allocation, ring included) and return what to copy where."""
    hdr = _parse_header(data, path, _HDR_LOAD, reference)
    if not (abi.GUEST_MIN_BASE <= hdr.entry < mem_size):
        raise _invalid(
            path,
            f"entry point {hdr.entry:#x} outside guest memory "
            f"[{abi.GUEST_MIN_BASE:#x}, {mem_size:#x})",
        )
    e_end = 0
    last_vaddr = 0
    segments: list[Segment] = []
    for ph in hdr.phdrs:
        if ph.type != PT_LOAD or ph.filesz == 0:
            continue
        i = ph.index

        def bad(what: str, i: int = i) -> ElfError:
            return _invalid(path, f"phdr[{i}] {what}")

        vaddr, align = ph.vaddr, ph.align
        if vaddr < abi.GUEST_MIN_BASE:                                       # 1
            raise bad(f"p_vaddr {vaddr:#x} below minimum load address "
                      f"{abi.GUEST_MIN_BASE:#x}")
        if vaddr < last_vaddr:                                               # 2
            raise bad(f"p_vaddr {vaddr:#x} not in ascending order "
                      f"(previous {last_vaddr:#x})")
        last_vaddr = vaddr
        if align == 0 or align & (align - 1):                                # 3
            raise bad(f"invalid p_align {align:#x}")
        start = vaddr & (U64_MAX & -align)
        if start < abi.GUEST_MIN_BASE:                                       # 4
            raise bad(f"aligned start {start:#x} below minimum load address "
                      f"{abi.GUEST_MIN_BASE:#x}")
        if start < e_end:                                                    # 5
            raise bad(f"overlaps previous segment (start {start:#x} < {e_end:#x})")
        file_end = vaddr + ph.filesz
        if vaddr >= mem_size or file_end > U64_MAX or file_end > mem_size:   # 6
            raise bad("file contents do not fit in guest memory")
        if ph.memsz < ph.filesz:                                             # 7
            raise bad(f"p_memsz {ph.memsz:#x} < p_filesz {ph.filesz:#x}")
        mem_end = vaddr + ph.memsz
        if mem_end > U64_MAX or mem_end + align - 1 > U64_MAX:               # 8
            raise bad("p_vaddr + p_memsz overflows")
        end = _alignup(mem_end, align)
        if end > mem_size:
            raise bad(f"segment end {end:#x} beyond guest memory {mem_size:#x}")
        if ph.offset + ph.filesz > len(data):                                 # 9
            raise bad("short read (segment extends beyond end of file)")
        if start % abi.PAGE_SIZE or end % abi.PAGE_SIZE:                     # 10
            raise bad(f"segment [{start:#x}, {end:#x}) is not page aligned")
        if ph.flags & PF_W and ph.flags & PF_X:                              # 11
            raise bad("requests WRITE and EXEC permissions")
        segments.append(Segment(
            index=i, vaddr=vaddr, offset=ph.offset, filesz=ph.filesz,
            memsz=ph.memsz, flags=ph.flags, start=start, end=end,
        ))
        e_end = max(e_end, end)
    return LoadPlan(entry=hdr.entry, segments=tuple(segments), kernel_end=e_end)
