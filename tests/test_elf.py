"""tender.elf: header checks, note search, PT_LOAD rules (HVT_SPEC 2.1-2.5)."""

from __future__ import annotations

import struct

import pytest
from elfcraft import (
    NT_ABI,
    NT_MFT,
    PF_R,
    PF_W,
    PF_X,
    PT_LOAD,
    PT_NOTE,
    Guest,
    Phdr,
    abi_note,
    mft_note,
    mft_payload,
    note,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tender import elf
from tender.errors import ElfError

P = "guest.hvt"
MEM = 512 << 20
HDR_NOTE_MSG = (
    f"{P}: invalid executable: invalid or unsupported executable "
    "(elf header invalid while loading note)"
)


def notes_err(data: bytes) -> str:
    with pytest.raises(ElfError) as ei:
        elf.read_notes(data, P)
    return ei.value.message


def load_err(data: bytes, mem: int = MEM) -> str:
    with pytest.raises(ElfError) as ei:
        elf.plan_load(data, P, mem)
    return ei.value.message


# --------------------------------------------------------------------------
# positive


def test_good_guest_notes() -> None:
    n = elf.read_notes(Guest().build(), P)
    assert n.abi == elf.AbiNote(target=1, version=2)
    assert n.manifest_payload == mft_payload()
    assert len(n.manifest_payload) == 8 + 104


def test_good_guest_plan() -> None:
    plan = elf.plan_load(Guest().build(), P, MEM)
    assert plan.entry == 0x100000
    assert [s.index for s in plan.segments] == [0, 1]   # bss + empty TLS skipped
    text, data = plan.segments
    assert (text.vaddr, text.offset, text.filesz, text.memsz, text.flags) == (
        0x100000, 0x1000, 0x1000, 0x1000, PF_X)
    assert (text.start, text.end) == (0x100000, 0x101000)
    assert (data.start, data.end, data.flags) == (0x101000, 0x102000, PF_R | PF_W)
    # kernel_end excludes .bss (filesz == 0, runs to 0x107000)
    assert plan.kernel_end == 0x102000


def test_kernel_end_is_max_aligned_end_with_bss_tail() -> None:
    # data segment whose memsz covers some bss: end rounds up within memsz
    g = Guest().with_load(1, memsz=0x2800)
    g = g.with_load(2, vaddr=0x104000)
    plan = elf.plan_load(g.build(), P, MEM)
    assert plan.kernel_end == 0x104000


def test_zero_filesz_load_at_vaddr0_skipped() -> None:
    g = Guest()
    g.loads.insert(0, Phdr(PT_LOAD, PF_R | PF_W, 0, 0, 0, 0x1000, 0))  # align 0 too
    plan = elf.plan_load(g.build(), P, MEM)
    assert len(plan.segments) == 2


def test_non_load_phdrs_ignored_by_loader() -> None:
    g = Guest(extra=[Phdr(6, PF_R, 0xFFFFFFFF, 5, 0x99999999, 1, 3)])   # PT_PHDR garbage
    assert elf.plan_load(g.build(), P, MEM).kernel_end == 0x102000


def test_no_loaded_segments() -> None:
    g = Guest(loads=[])
    plan = elf.plan_load(g.build(), P, MEM)
    assert plan.segments == () and plan.kernel_end == 0


def test_read_file(tmp_path: object) -> None:
    import pathlib

    assert isinstance(tmp_path, pathlib.Path)
    f = tmp_path / "g.hvt"
    f.write_bytes(b"abc")
    assert elf.read_file(str(f)) == b"abc"
    missing = str(tmp_path / "nope")
    with pytest.raises(ElfError) as ei:
        elf.read_file(missing)
    assert ei.value.message == f"{missing}: Could not open: No such file or directory"


# --------------------------------------------------------------------------
# header checks (2.1)


@pytest.mark.parametrize(
    "header",
    [
        {"magic": b"\x7fELG"},
        {"ei_class": 1},
        {"ei_data": 2},
        {"e_type": 3},           # ET_DYN (PIE)
        {"e_type": 1},
        {"machine": 3},
        {"version": 0},
        {"ehsize": 52},
        {"phentsize": 32},
    ],
)
def test_bad_header(header: dict[str, int | bytes]) -> None:
    data = Guest(header=header).build()
    assert notes_err(data) == HDR_NOTE_MSG
    assert "elf header invalid while loading" in load_err(data)


def test_phnum_zero() -> None:
    data = bytearray(Guest().build())
    struct.pack_into("<H", data, 56, 0)
    assert notes_err(bytes(data)) == HDR_NOTE_MSG
    assert "invalid executable" in load_err(bytes(data))


@pytest.mark.parametrize("size", [0, 1, 4, 16, 63, 64, 100, 64 + 56 * 6 - 1])
def test_truncated_header_or_phdrs(size: int) -> None:
    data = Guest().build()[:size]
    assert notes_err(data) == HDR_NOTE_MSG
    assert "invalid executable" in load_err(data)


def test_text_file_rejected() -> None:
    assert notes_err(b"root:x:0:0:root:/root:/bin/bash\n" * 4) == HDR_NOTE_MSG


def test_phoff_huge() -> None:
    data = bytearray(Guest().build())
    struct.pack_into("<Q", data, 32, (1 << 64) - 8)
    assert notes_err(bytes(data)) == HDR_NOTE_MSG


# --------------------------------------------------------------------------
# notes (2.5)


def test_no_notes() -> None:
    assert notes_err(Guest(notes=[]).build()) == (
        f"{P}: No Solo5 ABI information found in executable")


def test_note_filesz_below_12_fatal() -> None:
    g = Guest(extra=[Phdr(PT_NOTE, PF_R, 0x400, 0, 11, 0, 4)], notes=[])
    assert "note does not fall within valid size" in notes_err(g.build())


def test_note_filesz_below_20_skipped() -> None:
    g = Guest()
    g.extra = [Phdr(PT_NOTE, PF_R, 0x400, 0, 19, 0, 4)]
    # skipped, the real notes (earlier phdrs) are still found
    assert elf.read_notes(g.build(), P).abi.version == 2
    g2 = Guest(notes=[], extra=[Phdr(PT_NOTE, PF_R, 0x400, 0, 19, 0, 4)])
    assert "No Solo5 ABI information" in notes_err(g2.build())


def test_note_must_be_first_in_segment() -> None:
    # ABI note placed after another note inside the same PT_NOTE: not found
    other = note(1, b"abcd", name=b"GNU\x00", namesz=4)
    blob = other + abi_note()
    g = Guest(notes=[blob, mft_note()])
    assert "No Solo5 ABI information" in notes_err(g.build())


@pytest.mark.parametrize(
    "bad",
    [
        note(NT_ABI, struct.pack("<IIII", 1, 2, 0, 0), namesz=5),
        note(NT_ABI, struct.pack("<IIII", 1, 2, 0, 0), name=b"Solo6\x00"),
        note(NT_MFT, struct.pack("<IIII", 1, 2, 0, 0)),
    ],
)
def test_non_matching_notes_skipped(bad: bytes) -> None:
    assert "No Solo5 ABI information" in notes_err(Guest(notes=[bad, mft_note()]).build())


@pytest.mark.parametrize("descsz", [0, 33, 0xFFFFFFFF])
def test_abi_descsz_out_of_range(descsz: int) -> None:
    g = Guest(notes=[note(NT_ABI, struct.pack("<IIII", 1, 2, 0, 0), descsz=descsz)])
    assert "note does not fall within valid size" in notes_err(g.build())


def test_descsz_beyond_filesz() -> None:
    n = abi_note()
    g = Guest(notes=[n, mft_note()])
    data = bytearray(g.build())
    # shrink the ABI PT_NOTE's p_filesz below 20 + descsz
    nph = g.note_phdrs()[0]
    nph.filesz = 30
    idx = len(g.loads)
    data[64 + 56 * idx:64 + 56 * (idx + 1)] = nph.pack()
    assert "note does not fall within valid size" in notes_err(bytes(data))


def test_mft_descsz_1_underflow() -> None:
    g = Guest(notes=[abi_note(), note(NT_MFT, b"\x00", descsz=1)])
    msg = notes_err(g.build())
    assert "note does not fall within valid size" in msg
    assert msg.startswith(f"{P}: ")


def test_mft_descsz_too_big() -> None:
    g = Guest(notes=[abi_note(), note(NT_MFT, bytes(8), descsz=6669)])
    assert "note does not fall within valid size" in notes_err(g.build())


def test_mft_max_descsz_accepted() -> None:
    # 6668 = 4 + 8 + 104*64: 64 entries is the largest note the tender reads
    payload = mft_payload([(f"d{i}", 1) for i in range(63)])
    assert 4 + len(payload) == 6668
    g = Guest(notes=[abi_note(), mft_note(payload)], notes_off=0x3000, file_size=0x5000)
    data = g.build()
    assert elf.read_notes(data, P).manifest_payload == payload


def test_note_short_read() -> None:
    g = Guest(extra=[Phdr(PT_NOTE, PF_R, 0x10000000, 0, 40, 0, 4)], notes=[])
    assert "short read" in notes_err(g.build())


def test_note_payload_short_read() -> None:
    data = Guest().build()
    mft_off = Guest().note_phdrs()[1].offset
    # file ends inside the manifest payload
    assert "short read" in notes_err(data[:mft_off + 30])


def test_abi_wrong_target() -> None:
    g = Guest(notes=[abi_note(target=3), mft_note()])
    assert notes_err(g.build()) == f"{P}: Executable is not for the solo5-hvt target"


def test_abi_wrong_version() -> None:
    g = Guest(notes=[abi_note(version=1), mft_note()])
    assert notes_err(g.build()) == f"{P}: Executable requests unsupported ABI version 1"


def test_abi_short_payload() -> None:
    # payload shorter than target+version reads as zero-padded
    g = Guest(notes=[note(NT_ABI, b"\x01\x00"), mft_note()])
    assert notes_err(g.build()) == f"{P}: Executable requests unsupported ABI version 0"


def test_no_manifest() -> None:
    assert notes_err(Guest(notes=[abi_note()]).build()) == (
        f"{P}: No Solo5 manifest found in executable")


def test_abi_checked_before_manifest_errors() -> None:
    g = Guest(notes=[abi_note(version=7), note(NT_MFT, b"\x00", descsz=1)])
    assert "unsupported ABI version 7" in notes_err(g.build())


def test_manifest_payload_returned_raw() -> None:
    junk = b"\xff" * 13
    g = Guest(notes=[abi_note(), mft_note(junk)])
    assert elf.read_notes(g.build(), P).manifest_payload == junk


# --------------------------------------------------------------------------
# PT_LOAD rules (2.2)


@pytest.mark.parametrize("entry", [0, 0xFFFFF, MEM, MEM + 1, (1 << 64) - 1])
def test_entry_outside_memory(entry: int) -> None:
    msg = load_err(Guest(entry=entry).build())
    assert msg.startswith(f"{P}: invalid executable: ") and "entry" in msg


def test_entry_checked_before_segments() -> None:
    g = Guest(entry=0).with_load(0, vaddr=0x1000)
    assert "entry" in load_err(g.build())


def test_entry_at_top_of_memory_ok() -> None:
    elf.plan_load(Guest(entry=MEM - 1).build(), P, MEM)


@pytest.mark.parametrize(
    ("index", "changes", "fragment"),
    [
        (0, {"vaddr": 0xFF000}, "phdr[0]"),                                     # 1
        (1, {"vaddr": 0xFF000}, "phdr[1]"),                                     # 1
        (1, {"vaddr": 0x100000, "filesz": 0x10, "memsz": 0x10}, "phdr[1]"),      # 5
        (0, {"align": 0}, "p_align"),                                           # 3
        (0, {"align": 0x3000}, "p_align"),                                      # 3
    ],
)
def test_simple_rejections(index: int, changes: dict[str, int], fragment: str) -> None:
    g = Guest().with_load(index, **changes)
    msg = load_err(g.build())
    assert f"{P}: invalid executable: " in msg and fragment in msg


def test_below_min_base() -> None:
    assert "phdr[0] p_vaddr 0xff000 below minimum" in load_err(
        Guest().with_load(0, vaddr=0xFF000).build())


def test_descending_vaddr() -> None:
    g = Guest().with_load(0, vaddr=0x200000)
    assert "phdr[1]" in load_err(g.build()) and "ascending" in load_err(g.build())


def test_equal_vaddr_is_overlap_not_order() -> None:
    g = Guest().with_load(1, vaddr=0x100000)
    msg = load_err(g.build())
    assert "phdr[1]" in msg and "overlaps" in msg


def test_overlap_via_alignment() -> None:
    # text ends at 0x101000; data at 0x101800 aligned 0x2000 -> start 0x100000
    g = Guest().with_load(1, vaddr=0x101800, align=0x2000)
    msg = load_err(g.build())
    assert "phdr[1] overlaps" in msg


@pytest.mark.parametrize("align", [0, 3, 0x1001, 0x3000])
def test_bad_align(align: int) -> None:
    assert "phdr[0] invalid p_align" in load_err(Guest().with_load(0, align=align).build())


def test_align_check_before_overlap() -> None:
    g = Guest().with_load(1, vaddr=0x100000, align=0)
    assert "p_align" in load_err(g.build())


def test_aligned_start_below_min() -> None:
    g = Guest().with_load(0, align=0x200000)
    assert "phdr[0] aligned start 0x0" in load_err(g.build())


def test_file_part_beyond_memory() -> None:
    mem = 0x101000
    # data segment starts at mem: p_vaddr >= mem_size
    msg = load_err(Guest(entry=0x100000).build(), mem)
    assert "phdr[1] file contents do not fit" in msg


def test_file_part_straddles_end() -> None:
    g = Guest().with_load(1, filesz=0x2000, memsz=0x2000)
    msg = load_err(g.build(), 0x102800)
    assert "phdr[1] file contents do not fit" in msg


def test_vaddr_plus_filesz_overflows() -> None:
    g = Guest().with_load(1, vaddr=0x101000, filesz=(1 << 64) - 0x1000, memsz=(1 << 64) - 1)
    assert "phdr[1] file contents do not fit" in load_err(g.build())


def test_memsz_below_filesz() -> None:
    g = Guest().with_load(1, memsz=0x7FF)
    assert "phdr[1] p_memsz 0x7ff < p_filesz 0x800" in load_err(g.build())


def test_memory_part_beyond_memory() -> None:
    g = Guest().with_load(1, memsz=0x10000)
    msg = load_err(g.build(), 0x105000)
    assert "phdr[1] segment end 0x111000 beyond guest memory 0x105000" in msg


def test_vaddr_plus_memsz_overflows() -> None:
    g = Guest().with_load(1, memsz=(1 << 64) - 0x101000)
    assert "phdr[1] p_vaddr + p_memsz overflows" in load_err(g.build())


def test_alignup_overflows() -> None:
    g = Guest().with_load(1, memsz=(1 << 64) - 0x101000 - 1)
    assert "phdr[1] p_vaddr + p_memsz overflows" in load_err(g.build())


def test_short_read_segment() -> None:
    g = Guest().with_load(1, offset=0x2900)
    assert "phdr[1] short read" in load_err(g.build())
    g2 = Guest().with_load(1, offset=(1 << 64) - 1)
    assert "phdr[1] short read" in load_err(g2.build())


def test_non_page_aligned_start() -> None:
    g = Guest().with_load(1, vaddr=0x101010, align=0x10)
    assert "phdr[1] segment [0x101010, 0x102010) is not page aligned" in load_err(g.build())


def test_non_page_aligned_end() -> None:
    g = Guest().with_load(1, memsz=0x900, align=0x100)
    assert "not page aligned" in load_err(g.build())


@pytest.mark.parametrize("flags", [PF_W | PF_X, PF_R | PF_W | PF_X])
def test_write_exec(flags: int) -> None:
    g = Guest().with_load(1, flags=flags)
    msg = load_err(g.build())
    assert msg == f"{P}: invalid executable: phdr[1] requests WRITE and EXEC permissions"


def test_check_order_page_alignment_before_wx() -> None:
    g = Guest().with_load(1, flags=PF_W | PF_X, vaddr=0x101010, align=0x10)
    assert "page aligned" in load_err(g.build())


def test_check_order_short_read_before_page_alignment() -> None:
    g = Guest().with_load(1, vaddr=0x101010, align=0x10, offset=0x10000)
    assert "short read" in load_err(g.build())


def test_check_order_range_before_sizes() -> None:
    g = Guest().with_load(1, memsz=0x7FF, filesz=0x800)
    assert "file contents do not fit" in load_err(g.build(), 0x101400)


def test_filesz_zero_not_checked_anywhere() -> None:
    # a bss-only PT_LOAD with W+X, unaligned, below base: all ignored
    g = Guest()
    g.loads[2] = Phdr(PT_LOAD, PF_W | PF_X, 0, 0x10, 0, 0x123, 3)
    assert elf.plan_load(g.build(), P, MEM).kernel_end == 0x102000


def test_read_notes_does_not_check_loads() -> None:
    g = Guest().with_load(1, flags=PF_W | PF_X)
    elf.read_notes(g.build(), P)


# --------------------------------------------------------------------------
# properties: any bytes -> result or ElfError


GOOD = Guest().build()
FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def _try(data: bytes, mem: int = MEM) -> None:
    try:
        elf.read_notes(data, P)
    except ElfError:
        pass
    try:
        elf.plan_load(data, P, mem)
    except ElfError:
        pass


@FUZZ
@given(st.binary(max_size=512))
def test_fuzz_random_bytes(data: bytes) -> None:
    _try(data)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)),
                max_size=16))
def test_fuzz_byte_mutations(muts: list[tuple[int, int]]) -> None:
    data = bytearray(GOOD)
    for pos, val in muts:
        data[pos] = val
    _try(bytes(data))


@FUZZ
@given(st.integers(0, 0x500), st.integers(0, 56 * 6 + 64),
       st.sampled_from([0, 1, 0xFF, 0xFFFFFFFF, (1 << 64) - 1, 1 << 63, 0x100000]),
       st.sampled_from([4, 8]))
def test_fuzz_field_mutations(cut: int, pos: int, value: int, width: int) -> None:
    data = bytearray(GOOD)
    if pos + width <= len(data):
        data[pos:pos + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
    _try(bytes(data[:len(data) - cut]))
    _try(bytes(data) + bytes(cut))


@FUZZ
@given(st.integers(0, len(GOOD)), st.binary(max_size=64),
       st.integers(0, 1 << 33))
def test_fuzz_truncate_extend(cut: int, tail: bytes, mem: int) -> None:
    _try(GOOD[:cut] + tail, mem)
