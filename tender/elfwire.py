"""The two fixed ELF64 records the loader reads (Elf64_Ehdr, Elf64_Phdr),
decoded two ways.

`struct` serves the boot path: importing pyelftools costs more than a whole
C boot. pyelftools stays the project's ELF library: tooling decodes with it
(`reference=True`), and tests/test_fastdecode.py holds the struct decoder to
it on mutated and truncated binaries (same verdict, fields and message).

Both return the same tuples of ints; neither checks anything (tender.elf
does, once, on either result)."""

from __future__ import annotations

import functools
import struct
from collections.abc import Mapping

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from typing import Any

    from elftools.elf.structs import ELFStructs

# e_type, e_machine, e_version, e_entry, e_phoff, e_ehsize, e_phentsize, e_phnum
EhdrFields = tuple[int, int, int, int, int, int, int, int]
# p_type, p_flags, p_offset, p_vaddr, p_filesz, p_memsz, p_align
PhdrFields = tuple[int, int, int, int, int, int, int]

# e_ident[16] type machine version entry phoff shoff flags ehsize phentsize
# phnum shentsize shnum shstrndx
_EHDR = struct.Struct("<16xHHIQQQIHHHHHH")
# type flags offset vaddr paddr filesz memsz align
_PHDR = struct.Struct("<IIQQQQQQ")


def ehdr(raw: bytes, reference: bool = False) -> EhdrFields:
    """Decode a 64-byte Elf64_Ehdr (little-endian)."""
    if reference:
        return _ehdr_ref(raw)
    t, m, v, entry, phoff, _sh, _fl, ehsize, phentsize, phnum, _a, _b, _c = _EHDR.unpack(raw)
    return (t, m, v, entry, phoff, ehsize, phentsize, phnum)


def phdr(raw: bytes, reference: bool = False) -> PhdrFields:
    """Decode a 56-byte Elf64_Phdr (little-endian)."""
    if reference:
        return _phdr_ref(raw)
    t, flags, offset, vaddr, _paddr, filesz, memsz, align = _PHDR.unpack(raw)
    return (t, flags, offset, vaddr, filesz, memsz, align)


# --------------------------------------------------------------------------
# pyelftools, the reference


@functools.cache
def _structs() -> ELFStructs:
    from elftools.elf.structs import ELFStructs

    s = ELFStructs(little_endian=True, elfclass=64)
    s.create_basic_structs()
    s.create_advanced_structs("ET_EXEC", "EM_X86_64", "ELFOSABI_SYSV")
    return s


def _enum_value(value: Any, names: Mapping[str, int]) -> int:
    """pyelftools decodes known enum values to names; map them back to ints."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value in names:
        return names[value]
    raise ValueError(f"unexpected enum value {value!r}")


def _ehdr_ref(raw: bytes) -> EhdrFields:
    from elftools.elf.enums import ENUM_E_MACHINE, ENUM_E_TYPE, ENUM_E_VERSION

    h = _structs().Elf_Ehdr.parse(raw)
    return (
        _enum_value(h["e_type"], ENUM_E_TYPE),
        _enum_value(h["e_machine"], ENUM_E_MACHINE),
        _enum_value(h["e_version"], ENUM_E_VERSION),
        int(h["e_entry"]), int(h["e_phoff"]), int(h["e_ehsize"]),
        int(h["e_phentsize"]), int(h["e_phnum"]),
    )


def _phdr_ref(raw: bytes) -> PhdrFields:
    from elftools.elf.enums import ENUM_P_TYPE_BASE

    p = _structs().Elf_Phdr.parse(raw)
    return (
        _enum_value(p["p_type"], ENUM_P_TYPE_BASE), int(p["p_flags"]), int(p["p_offset"]),
        int(p["p_vaddr"]), int(p["p_filesz"]), int(p["p_memsz"]), int(p["p_align"]),
    )
