"""Pure layout: memory sizes, page tables, GDT, boot info (spec 3)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tender import abi, layout
from tender.errors import TenderError

MIB = 1 << 20


@pytest.mark.parametrize(
    ("requested", "has_net", "alloc", "guest", "warn"),
    [
        (512 * MIB, False, 512 * MIB, 512 * MIB, False),
        (1 * MIB, False, 2 * MIB, 2 * MIB, True),
        (3 * MIB, False, 2 * MIB, 2 * MIB, True),
        (64 * MIB, True, 66 * MIB, 64 * MIB, False),
        (4096 * MIB, False, 4096 * MIB, 4096 * MIB, False),
        (4096 * MIB, True, 4096 * MIB, 0xFFE00000, False),
        (4095 * MIB, True, 4096 * MIB, 0xFFE00000, True),
    ],
)
def test_mem_size(requested: int, has_net: bool, alloc: int, guest: int, warn: bool) -> None:
    m = layout.mem_size(requested, has_net)
    assert (m.alloc, m.guest) == (alloc, guest)
    assert (m.warning is not None) == warn
    if warn:
        rounded = max(requested & ~(abi.HUGE_PAGE - 1), abi.HUGE_PAGE)
        assert m.warning == f"adjusting memory to {rounded} bytes"


def test_mem_too_big() -> None:
    with pytest.raises(TenderError, match="exceeds the max size 4294967296 bytes"):
        layout.mem_size(4098 * MIB, False)


@pytest.mark.parametrize(("text", "value"), [("64", 64 * MIB), ("64MB", 64 * MIB),
                                             ("+2", 2 * MIB), ("007", 7 * MIB)])
def test_parse_mem(text: str, value: int) -> None:
    assert layout.parse_mem_arg(text) == value


@pytest.mark.parametrize("text", ["", "0", "abc", "-", "0x10", " 5"])
def test_parse_mem_malformed(text: str) -> None:
    with pytest.raises(TenderError, match="Malformed argument to --mem"):
        layout.parse_mem_arg(text)


def test_negative_mem_wraps_like_size_t() -> None:
    v = layout.parse_mem_arg("-1")
    assert v == (1 << 64) - MIB
    with pytest.raises(TenderError, match="exceeds the max size"):
        layout.mem_size(v, False)


@given(st.integers(min_value=1, max_value=4096 * MIB), st.booleans())
def test_mem_size_properties(requested: int, has_net: bool) -> None:
    m = layout.mem_size(requested, has_net)
    assert m.alloc % abi.HUGE_PAGE == 0 and m.guest % abi.HUGE_PAGE == 0
    assert 0 < m.guest <= m.alloc <= abi.MAX_MEM
    assert m.alloc - m.guest == (abi.HUGE_PAGE if has_net else 0)


def test_page_tables_sample_values() -> None:
    blobs = dict(layout.page_tables(64 * MIB))
    pml4 = struct.unpack("<512Q", blobs[abi.PML4_BASE])
    pdpt = struct.unpack("<512Q", blobs[abi.PDPT_BASE])
    pd = struct.unpack("<2048Q", blobs[abi.PD_BASE])
    pt0 = struct.unpack("<512Q", blobs[abi.PT0_BASE])
    assert pml4[0] == 0x3003 and not any(pml4[1:])
    assert pdpt[:4] == (0x4003, 0x5003, 0x6003, 0x7003) and not any(pdpt[4:])
    assert pd[0] == 0x8003 and pd[1] == 0x200083
    assert pd[31] == 31 * 2 * MIB | 0x83 and pd[32] == 0   # 64 MiB = 32 huge pages
    assert pt0[15] == 0 and pt0[16] == 0x10001 and pt0[255] == 0xFF001
    assert pt0[256] == 0x100003 and pt0[511] == 0x1FF003


def test_gdt() -> None:
    assert layout.gdt() == struct.pack("<3Q", 0, 0x00AF99000000FFFF, 0x00CF93000000FFFF)


@pytest.mark.parametrize(("entries", "cmdline_gpa"), [(1, 0x100A8), (2, 0x10110)])
def test_boot_info(entries: int, cmdline_gpa: int) -> None:
    mft = bytes(8 + 104 * entries)
    m = layout.mem_size(64 * MIB, True)
    blobs = layout.boot_blobs(kernel_end=0x108000, mem=m, tsc_hz=2_000_000_000,
                              manifest=mft, args=(b"a", b"b c"), ring_active=True)
    (bi_gpa, bi), (mft_gpa, mft_copy), (cl_gpa, cl) = blobs
    assert (bi_gpa, mft_gpa, cl_gpa) == (0x10000, 0x10038, cmdline_gpa)
    assert abi.BOOT_INFO.unpack(bi) == (64 * MIB, 0x108000, 2_000_000_000, cmdline_gpa,
                                        0x10038, 1, 0, 64 * MIB)
    assert mft_copy == mft and cl == b"a b c\0"


def test_boot_info_without_ring() -> None:
    m = layout.mem_size(64 * MIB, False)
    (_, bi), *_ = layout.boot_blobs(kernel_end=0, mem=m, tsc_hz=1, manifest=bytes(112),
                                    args=(), ring_active=False)
    fields = abi.BOOT_INFO.unpack(bi)
    assert fields[5] == 0 and fields[7] == 0


def test_cmdline_limit() -> None:
    assert layout.cmdline_bytes((b"x" * 8191,)) == b"x" * 8191 + b"\0"
    assert layout.cmdline_bytes(()) == b"\0"
    with pytest.raises(TenderError, match=r"Guest command line too long \(max=8191"):
        layout.cmdline_bytes((b"x" * 4096, b"y" * 4095))


def test_cpu_plan() -> None:
    m = layout.mem_size(64 * MIB, True)
    p = layout.cpu_plan(0x100123, m)
    assert (p.rip, p.rsp, p.rdi, p.rflags) == (0x100123, 64 * MIB - 8, 0x10000, 2)
    s = p.sregs
    assert (s.cr0, s.cr3, s.cr4, s.efer) == (0x80010021, 0x2000, 0x620, 0x500)
    assert (s.cs.selector, s.cs.l, s.cs.type) == (8, 1, 9)
    assert (s.data.selector, s.data.db, s.data.type) == (0x10, 1, 3)


def test_wx_page_tables_nx_outside_text() -> None:
    """Text pages are R+X, rodata R+NX, everything else RW+NX; accessed and
    dirty bits preset; a 2 MiB region whose pages differ is split into 4 KiB
    pages, a uniform one stays a 2 MiB page."""
    import struct

    nx, ad = layout.PTE_NX, layout.PTE_A | layout.PTE_D
    wx = layout.WxMap(text=((0x100000, 0x105000), (0x400000, 0x401000)),
                      read_only=((0x105000, 0x107000), (0x600000, 0x800000)))
    blobs = dict(layout.page_tables(64 * MIB, wx))
    pt0 = struct.unpack("<512Q", blobs[0x8000])
    pd = struct.unpack("<2048Q", blobs[0x4000])
    pml4 = struct.unpack("<Q", blobs[0x2000][:8])[0]
    assert pml4 == 0x3000 | 3 | layout.PTE_A and pd[0] == 0x8000 | 3 | layout.PTE_A
    assert pt0[256] == 0x100001 | ad and pt0[260] == 0x104001 | ad      # text: R+X
    assert pt0[261] == 0x105001 | ad | nx                                # rodata: R
    assert pt0[263] == 0x107003 | ad | nx and pt0[16] == 0x10001 | ad | nx
    assert pt0[0] == 0 and pt0[15] == 0                                  # low 64 KiB absent
    assert pd[1] == 0x200083 | ad | nx
    assert pd[2] == layout.EXTRA_PT_BASE | 3 | layout.PTE_A
    assert pd[3] == 0x600081 | ad | nx                                   # uniform rodata
    pt = struct.unpack("<512Q", blobs[layout.EXTRA_PT_BASE])
    assert pt[0] == 0x400001 | ad and pt[1] == 0x401003 | ad | nx
    plan = layout.cpu_plan(0x100000, layout.mem_size(64 * MIB, False), wx)
    assert plan.sregs.efer == 0x500 | layout.EFER_NXE and plan.sregs.cr0 & (1 << 16)
    assert layout.EXTRA_PT_BASE not in dict(layout.page_tables(64 * MIB))
