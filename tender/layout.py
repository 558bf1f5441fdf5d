"""Pure: what the guest sees at boot (spec 3): memory size, page tables, GDT,
boot info, manifest copy, command line and initial registers, as plain data."""

from __future__ import annotations

import functools
import struct

from tender import abi
from tender.errors import TenderError
from tender.record import record

MIB = 1 << 20
U64 = (1 << 64) - 1


def parse_mem_arg(text: str) -> int:
    """`--mem=N`: N MiB as a signed decimal with trailing junk ignored (like
    strtoll); 0 or no digits is malformed. Returns bytes, wrapped to 64 bits
    as solo5-hvt's size_t arithmetic does."""
    i = 0
    if i < len(text) and text[i] in "+-":
        i += 1
    j = i
    while j < len(text) and text[j].isdigit() and text[j].isascii():
        j += 1
    if j == i:
        raise TenderError("Malformed argument to --mem")
    value = int(text[:j])
    if value == 0:
        raise TenderError("Malformed argument to --mem")
    value = max(min(value, (1 << 63) - 1), -(1 << 63))
    return (value << 20) & U64


@record(frozen=True)
class MemSize:
    """Guest memory sizes (spec 3.1)."""

    alloc: int        # A: host allocation and memslot size (incl. ring area)
    guest: int        # M: what the guest is told and may address
    warning: str | None = None

    @property
    def ring_base(self) -> int:
        return self.guest


def mem_size(requested: int, has_net: bool) -> MemSize:
    """Spec 3.1: round down to 2 MiB (min 2 MiB), cap 4 GiB, and with a NET
    device add the ring area (2 MiB) on top, capped again at 4 GiB."""
    mem = requested & ~(abi.HUGE_PAGE - 1)
    if mem == 0:
        mem = abi.HUGE_PAGE
    warning = f"adjusting memory to {mem} bytes" if mem != requested else None
    if mem > abi.MAX_MEM:
        raise TenderError(
            f"guest memory size {mem} bytes exceeds the max size {abi.MAX_MEM} bytes"
        )
    if not has_net:
        return MemSize(mem, mem, warning)
    ring = _align_up(abi.RING_STRUCT_SIZE, abi.HUGE_PAGE)
    alloc = min(_align_up(mem + ring, abi.HUGE_PAGE), abi.MAX_MEM)
    return MemSize(alloc, alloc - abi.HUGE_PAGE, warning)


def _align_up(x: int, a: int) -> int:
    return (x + a - 1) & ~(a - 1)


@record(frozen=True)
class Seg:
    """An x86 segment register value (selector, base, limit, attributes)."""

    selector: int
    base: int
    limit: int
    type: int
    present: int
    dpl: int
    db: int
    s: int
    l: int  # noqa: E741 - the architectural name
    g: int
    avl: int = 0
    unusable: int = 0


CODE_SEG = Seg(0x08, 0, 0xFFFFFFFF, 9, 1, 0, 0, 1, 1, 1)
DATA_SEG = Seg(0x10, 0, 0xFFFFFFFF, 3, 1, 0, 1, 1, 0, 1)
TR_SEG = Seg(0, 0, 0, 11, 1, 0, 0, 0, 0, 0)
LDT_SEG = Seg(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)

CR0 = 0x80010021   # PE | NE | WP | PG
CR4 = 0x620        # PAE | OSFXSR | OSXMMEXCPT
EFER = 0x500       # LME | LMA
GDT_LIMIT = 23
GDT_ENTRIES = (0x0, 0x00AF99000000FFFF, 0x00CF93000000FFFF)


@record(frozen=True)
class SpecialRegs:
    """The segment and control registers of the boot vCPU."""

    cs: Seg = CODE_SEG
    data: Seg = DATA_SEG          # ss, ds, es, fs, gs
    tr: Seg = TR_SEG
    ldt: Seg = LDT_SEG
    gdt_base: int = abi.GDT_BASE
    gdt_limit: int = GDT_LIMIT
    cr0: int = CR0
    cr3: int = abi.PML4_BASE
    cr4: int = CR4
    efer: int = EFER


@record(frozen=True)
class CpuPlan:
    """Initial vCPU state plus the structures it points at (GDT, page tables)."""

    blobs: tuple[tuple[int, bytes], ...]   # (gpa, bytes) to copy into guest RAM
    rip: int
    rsp: int
    rdi: int
    rflags: int
    sregs: SpecialRegs


PTE_NX = 1 << 63
PTE_A = 1 << 5          # accessed
PTE_D = 1 << 6          # dirty (leaf entries only)
EFER_NXE = 1 << 11
# Spare pages below the boot info for 4 KiB tables of 2 MiB regions whose
# pages do not all share one set of permissions (PT0 covers the first region).
EXTRA_PT_BASE = 0x9000
EXTRA_PT_COUNT = 7

Ranges = tuple[tuple[int, int], ...]


@record(frozen=True)
class WxMap:
    """W^X paging input: [start, end) ranges of the executable segments
    (mapped R+X) and of the other read-only segments (R, NX). Every other
    page is RW+NX. Accessed/dirty bits are preset in every entry, so the
    CPU never writes the tables (they sit in read-only guest memory)."""

    text: Ranges = ()
    read_only: Ranges = ()


def _in(addr: int, ranges: Ranges) -> bool:
    return any(s <= addr < e for s, e in ranges)


def _leaf(addr: int, wx: WxMap | None, writable: bool) -> int:
    """P/RW/NX/A/D bits of the page at `addr` (writable: spec 3.3's view)."""
    if wx is None:
        return abi.PTE_P | (abi.PTE_RW if writable else 0)
    flags = abi.PTE_P | PTE_A | PTE_D
    if _in(addr, wx.text):
        return flags
    if writable and not _in(addr, wx.read_only):
        flags |= abi.PTE_RW
    return flags | PTE_NX


# Pure, and the same for every boot of one guest at one size: a library
# process booting it again (warm start) takes the tables from here.
@functools.lru_cache(maxsize=16)
def page_tables(alloc: int, wx: WxMap | None = None) -> tuple[tuple[int, bytes], ...]:
    """Identity map: 4 KiB pages below 2 MiB (low 64 KiB absent, boot info
    region read-only), 2 MiB pages for the rest of the allocation.

    Without `wx`: spec 3.3 exactly (everything RWX). With it: see WxMap; a
    2 MiB region whose pages differ gets a 4 KiB table of its own while
    spare table pages last (past that it gets the union of its pages'
    rights: writable and executable)."""
    dirs = abi.PTE_P | abi.PTE_RW | (PTE_A if wx is not None else 0)
    pml4 = struct.pack("<Q", abi.PDPT_BASE | dirs) + bytes(4088)
    pdpt = struct.pack(
        "<4Q", *((abi.PD_BASE + i * abi.PAGE_SIZE) | dirs for i in range(4))
    ) + bytes(4096 - 32)
    pd = [0] * 2048
    pd[0] = abi.PT0_BASE | dirs
    extra: list[tuple[int, bytes]] = []
    marked = (*wx.text, *wx.read_only) if wx is not None else ()
    # 2 MiB regions a segment touches; every other one gets the same flags.
    touched = {k for s, e in marked for k in range(s // abi.HUGE_PAGE, -(-e // abi.HUGE_PAGE))}
    plain = abi.PTE_PS | _leaf(-1, wx, True)
    for k in range(1, min(2048, -(-alloc // abi.HUGE_PAGE))):
        base = k * abi.HUGE_PAGE
        if k not in touched:
            pd[k] = base | plain
            continue
        assert wx is not None
        ptes = [base + i * abi.PAGE_SIZE | _leaf(base + i * abi.PAGE_SIZE, wx, True)
                for i in range(512)]
        kinds = {p & (0xFFF | PTE_NX) for p in ptes}
        if len(kinds) == 1:
            pd[k] = base | abi.PTE_PS | kinds.pop()
        elif len(extra) < EXTRA_PT_COUNT:
            gpa = EXTRA_PT_BASE + len(extra) * abi.PAGE_SIZE
            pd[k] = gpa | dirs
            extra.append((gpa, struct.pack("<512Q", *ptes)))
        else:
            pd[k] = base | abi.PTE_PS | abi.PTE_P | abi.PTE_RW | PTE_A | PTE_D
    pt0 = []
    for i in range(512):
        addr = i * abi.PAGE_SIZE
        if addr < abi.BOOT_INFO_BASE:
            pt0.append(0)
        else:
            pt0.append(addr | _leaf(addr, wx, addr >= abi.GUEST_MIN_BASE))
    return (
        (abi.PML4_BASE, pml4),
        (abi.PDPT_BASE, pdpt),
        (abi.PD_BASE, struct.pack("<2048Q", *pd)),
        (abi.PT0_BASE, struct.pack("<512Q", *pt0)),
        *extra,
    )


def gdt() -> bytes:
    return struct.pack("<3Q", *GDT_ENTRIES)


def cmdline_bytes(args: tuple[bytes, ...]) -> bytes:
    line = b" ".join(args)
    if len(line) > abi.CMDLINE_SIZE - 1:
        raise TenderError(
            f"Guest command line too long (max={abi.CMDLINE_SIZE - 1} characters)"
        )
    return line + b"\0"


def cpu_plan(
    entry: int, mem: MemSize, wx: WxMap | None = None
) -> CpuPlan:
    """`wx` given: W^X paging (see page_tables) and EFER.NXE (CR0.WP is
    always set, as spec 3.6). The GDT's descriptors have their accessed
    bits preset (types 9 and 3), so the CPU never writes it either."""
    return CpuPlan(
        blobs=((abi.GDT_BASE, gdt()), *page_tables(mem.alloc, wx)),
        rip=entry,
        rsp=mem.guest - 8,
        rdi=abi.BOOT_INFO_BASE,
        rflags=0x2,
        sregs=SpecialRegs(efer=EFER | (EFER_NXE if wx is not None else 0)),
    )


def boot_blobs(
    *,
    kernel_end: int,
    mem: MemSize,
    tsc_hz: int,
    manifest: bytes,
    args: tuple[bytes, ...],
    ring_active: bool,
) -> tuple[tuple[int, bytes], ...]:
    """Boot info, manifest copy and command line (spec 3.5)."""
    cmdline = cmdline_bytes(args)
    mft_gpa = abi.MFT_COPY_BASE
    cmdline_gpa = mft_gpa + len(manifest)
    boot_info = abi.BOOT_INFO.pack(
        mem.guest,
        kernel_end,
        tsc_hz,
        cmdline_gpa,
        mft_gpa,
        abi.HVT_FEATURE_RING_IO if ring_active else 0,
        0,
        mem.ring_base if ring_active else 0,
    )
    return ((abi.BOOT_INFO_BASE, boot_info), (mft_gpa, manifest), (cmdline_gpa, cmdline))
