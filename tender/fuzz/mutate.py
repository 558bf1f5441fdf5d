"""Pure, seeded ELF/manifest mutations: bytes and a Random in, bytes out."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from dataclasses import dataclass

from tender import abi
from tender.elf import EHDR_SIZE, NHDR_SIZE, PHDR_SIZE, PT_NOTE
from tender.manifest import ENTRY_SIZE

U64 = (1 << 64) - 1

# (offset, size) of the Elf64_Ehdr fields after e_ident.
EHDR_FIELDS = ((16, 2), (18, 2), (20, 4), (24, 8), (32, 8), (40, 8), (48, 4),
               (52, 2), (54, 2), (56, 2), (58, 2), (60, 2), (62, 2))
# Elf64_Phdr: p_type p_flags p_offset p_vaddr p_paddr p_filesz p_memsz p_align.
PHDR_FIELDS = ((0, 4), (4, 4), (8, 8), (16, 8), (24, 8), (32, 8), (40, 8), (48, 8))
MFT_ENTRY_FIELDS = ((0, 68), (68, 4), (72, 8), (80, 2), (88, 8), (96, 1))

_EDGES = (0, 1, 2, 7, 8, 0xFF, 0x1000, 0xFFF, 0x100000, 0xFFFFF, 0x200000,
          0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32, 0x20000000, 0x1FFFFFFF,
          abi.MAX_MEM, abi.MAX_MEM - 1, 1 << 63, U64, U64 - 1, U64 - 0xFFF)


@dataclass(frozen=True)
class Mutant:
    kind: str
    data: bytes


def _edge(rng: random.Random, old: int, size: int) -> int:
    mask = (1 << (8 * size)) - 1
    pick = rng.randrange(4)
    if pick == 0:
        value = rng.choice(_EDGES)
    elif pick == 1:
        value = old + rng.randint(-64, 64)
    elif pick == 2:
        value = old ^ (1 << rng.randrange(8 * size))
    else:
        value = rng.getrandbits(8 * size)
    return value & mask


def _set_field(buf: bytearray, rng: random.Random, off: int, size: int) -> None:
    if off + size > len(buf):
        return
    if size > 8:        # a name: random bytes, maybe without any NUL
        for i in range(rng.randint(1, size)):
            buf[off + rng.randrange(size)] = rng.randrange(256) if i else 0x41
        return
    old = int.from_bytes(buf[off:off + size], "little")
    buf[off:off + size] = _edge(rng, old, size).to_bytes(size, "little")


def _phdrs(buf: bytes | bytearray) -> list[int]:
    """File offsets of the program headers that lie inside the file."""
    if len(buf) < EHDR_SIZE:
        return []
    phoff = int.from_bytes(buf[32:40], "little")
    phnum = int.from_bytes(buf[56:58], "little")
    return [phoff + i * PHDR_SIZE for i in range(min(phnum, 256))
            if phoff + (i + 1) * PHDR_SIZE <= len(buf)]


def _notes(buf: bytes | bytearray) -> list[tuple[int, int]]:
    """(offset, size) of every PT_NOTE segment's file contents."""
    out = []
    for off in _phdrs(buf):
        p_type, = struct.unpack_from("<I", buf, off)
        if p_type == PT_NOTE:
            n_off, = struct.unpack_from("<Q", buf, off + 8)
            n_size, = struct.unpack_from("<Q", buf, off + 32)
            if n_off + NHDR_SIZE <= len(buf):
                out.append((n_off, min(n_size, len(buf) - n_off)))
    return out


def bit_flips(buf: bytearray, rng: random.Random) -> None:
    for _ in range(rng.choice((1, 1, 2, 4, 8, 32))):
        i = rng.randrange(len(buf))
        buf[i] ^= 1 << rng.randrange(8)


def ehdr(buf: bytearray, rng: random.Random) -> None:
    if rng.randrange(8) == 0:
        buf[rng.randrange(16)] = rng.randrange(256)    # e_ident
    else:
        _set_field(buf, rng, *rng.choice(EHDR_FIELDS))


def phdr(buf: bytearray, rng: random.Random) -> None:
    offs = _phdrs(buf)
    if offs:
        rel, size = rng.choice(PHDR_FIELDS)
        _set_field(buf, rng, rng.choice(offs) + rel, size)


def note(buf: bytearray, rng: random.Random) -> None:
    notes = _notes(buf)
    if not notes:
        return
    off, size = rng.choice(notes)
    pick = rng.randrange(3)
    if pick == 0:       # namesz, descsz, type
        _set_field(buf, rng, off + 4 * rng.randrange(3), 4)
    elif pick == 1:     # the name
        buf[off + 12 + rng.randrange(8)] = rng.randrange(256)
    elif size > 20:     # the descriptor
        buf[off + 20 + rng.randrange(size - 20)] = rng.randrange(256)


def manifest(buf: bytearray, rng: random.Random) -> None:
    """Mutate the MFT1 payload: version, entry count or an entry's field."""
    for off, size in _notes(buf):
        ntype, = struct.unpack_from("<I", buf, off + 8)
        if ntype != abi.NOTE_TYPE_MFT or size < 32:
            continue
        base = off + 24         # 20 note head bytes + 4 padding
        pick = rng.randrange(4)
        if pick == 0:
            _set_field(buf, rng, base, 4)
        elif pick == 1:
            _set_field(buf, rng, base + 4, 4)
        else:
            entries = max(1, (size - 32) // ENTRY_SIZE)
            entry = base + 8 + rng.randrange(entries) * ENTRY_SIZE
            rel, fsize = rng.choice(MFT_ENTRY_FIELDS)
            _set_field(buf, rng, entry + rel, fsize)
        return


MUTATORS: tuple[tuple[str, Callable[[bytearray, random.Random], None]], ...] = (
    ("bitflip", bit_flips), ("ehdr", ehdr), ("phdr", phdr), ("note", note),
    ("manifest", manifest),
)


def truncate(data: bytes, rng: random.Random) -> bytes:
    """Cut at a random point, often near a header or note boundary."""
    cuts = [EHDR_SIZE, *(o + PHDR_SIZE for o in _phdrs(data)),
            *(o + s for o, s in _notes(data))]
    cut = rng.choice(cuts) + rng.randint(-8, 8) if rng.randrange(2) else \
        rng.randrange(len(data))
    return data[:max(0, cut)]


def mutate(data: bytes, rng: random.Random) -> Mutant:
    """One mutant: 1-3 field-aware or bit-level mutations, or a truncation."""
    if rng.randrange(6) == 0:
        return Mutant("truncate", truncate(data, rng))
    buf = bytearray(data)
    kinds = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        kind, fn = rng.choice(MUTATORS)
        fn(buf, rng)
        kinds.append(kind)
    return Mutant("+".join(sorted(set(kinds))), bytes(buf))
