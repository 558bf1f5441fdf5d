"""Hand-crafted ELF64 images for loader tests (no toolchain needed).

`Guest` describes a typical hvt binary (text, data, bss, empty TLS PT_LOAD at
vaddr 0, ABI1 and MFT1 PT_NOTEs); tests tweak its fields and call `build()`.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass, field

PT_LOAD = 1
PT_NOTE = 4
PT_TLS = 7
PF_X, PF_W, PF_R = 1, 2, 4

NOTE_NAME = b"Solo5\x00"
NT_ABI = 0x31494241
NT_MFT = 0x3154464D

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")


def ehdr(
    entry: int,
    phoff: int,
    phnum: int,
    *,
    ei_class: int = 2,
    ei_data: int = 1,
    e_type: int = 2,
    machine: int = 62,
    version: int = 1,
    ehsize: int = 64,
    phentsize: int = 56,
    magic: bytes = b"\x7fELF",
) -> bytes:
    ident = magic + bytes([ei_class, ei_data, 1, 0, 0]) + bytes(7)
    return EHDR.pack(ident, e_type, machine, version, entry, phoff, 0, 0,
                     ehsize, phentsize, phnum, 64, 0, 0)


@dataclass
class Phdr:
    type: int
    flags: int = PF_R
    offset: int = 0
    vaddr: int = 0
    filesz: int = 0
    memsz: int = 0
    align: int = 0x1000

    def pack(self) -> bytes:
        return PHDR.pack(self.type, self.flags, self.offset, self.vaddr, self.vaddr,
                         self.filesz, self.memsz, self.align)


def note(
    ntype: int,
    desc: bytes,
    *,
    name: bytes = NOTE_NAME,
    namesz: int | None = None,
    descsz: int | None = None,
) -> bytes:
    """An ELF note; the 8-byte name field is padded, desc appended as given."""
    return (
        struct.pack("<III", len(name) if namesz is None else namesz,
                    len(desc) if descsz is None else descsz, ntype)
        + name.ljust(8, b"\x00")
        + desc
    )


def abi_note(target: int = 1, version: int = 2) -> bytes:
    return note(NT_ABI, struct.pack("<IIII", target, version, 0, 0))


def mft_payload(names_types: list[tuple[str, int]] | None = None) -> bytes:
    """8 + 104E bytes: header, reserved entry 0, then the given devices."""
    entries = [("", 0x40000000), *(names_types or [])]
    out = struct.pack("<II", 1, len(entries))
    for name, t in entries:
        out += struct.pack("<68sI16sQ?7x", name.encode(), t, bytes(16), 0, False)
    return out


def mft_note(payload: bytes | None = None) -> bytes:
    return note(NT_MFT, bytes(4) + (mft_payload() if payload is None else payload))


TEXT_OFF = 0x1000
DATA_OFF = 0x2000
NOTES_OFF = 0x400


@dataclass
class Guest:
    """A minimal but realistic hvt guest image."""

    entry: int = 0x100000
    notes: list[bytes] = field(default_factory=lambda: [abi_note(), mft_note()])
    loads: list[Phdr] = field(default_factory=lambda: [
        Phdr(PT_LOAD, PF_X, TEXT_OFF, 0x100000, 0x1000, 0x1000),            # .text
        Phdr(PT_LOAD, PF_R | PF_W, DATA_OFF, 0x101000, 0x800, 0x1000),      # .data
        Phdr(PT_LOAD, PF_R | PF_W, 0, 0x102000, 0, 0x5000),                 # .bss
        Phdr(PT_LOAD, PF_R, 0, 0, 0, 0, 0x8),                               # empty TLS
    ])
    extra: list[Phdr] = field(default_factory=list)   # appended after the notes
    header: dict[str, int | bytes] = field(default_factory=dict)
    file_size: int = 0x3000
    notes_off: int = NOTES_OFF        # 0x3000 for notes too big for the gap

    def note_phdrs(self) -> list[Phdr]:
        out: list[Phdr] = []
        off = self.notes_off
        for n in self.notes:
            out.append(Phdr(PT_NOTE, PF_R, off, 0, len(n), 0, 4))
            off += (len(n) + 7) & -8
        return out

    def phdrs(self) -> list[Phdr]:
        return self.loads + self.note_phdrs() + self.extra

    def build(self) -> bytes:
        phdrs = self.phdrs()
        notes_len = sum((len(n) + 7) & -8 for n in self.notes)
        buf = bytearray(max(self.file_size, DATA_OFF + 0x1000, self.notes_off + notes_len))
        head = ehdr(self.entry, 64, len(phdrs), **self.header)  # type: ignore[arg-type]
        buf[0:64] = head
        table = b"".join(p.pack() for p in phdrs)
        assert 64 + len(table) <= min(self.notes_off, TEXT_OFF)
        buf[64:64 + len(table)] = table
        off = self.notes_off
        for n in self.notes:
            buf[off:off + len(n)] = n
            off += (len(n) + 7) & -8
        assert self.notes_off >= DATA_OFF + 0x1000 or off <= TEXT_OFF
        buf[TEXT_OFF:TEXT_OFF + 4] = b"\xf4\xeb\xfd\x90"    # hlt; jmp .
        buf[DATA_OFF:DATA_OFF + 4] = b"DATA"
        return bytes(buf[:self.file_size])

    def with_load(self, index: int, **changes: int) -> Guest:
        loads = list(self.loads)
        loads[index] = dataclasses.replace(loads[index], **changes)
        return dataclasses.replace(self, loads=loads)
