"""hvt ABI constants and struct layouts (HVT_SPEC.md): the one source of truth."""

from __future__ import annotations

import enum
import struct

HVT_ABI_VERSION = 2
HVT_ABI_TARGET = 1
MFT_VERSION = 1
SOLO5_VERSION = "v0.12.1-pytender"

# --- guest-physical memory map (spec 3.2) ---------------------------------
GUEST_MIN_BASE = 0x100000
GDT_BASE = 0x1000
PML4_BASE = 0x2000
PDPT_BASE = 0x3000
PD_BASE = 0x4000          # 4 page directories, one per GiB
PT0_BASE = 0x8000         # 4 KiB page table for the first 2 MiB
BOOT_INFO_BASE = 0x10000
BOOT_INFO_SIZE = 56
MFT_COPY_BASE = BOOT_INFO_BASE + BOOT_INFO_SIZE   # 0x10038
CMDLINE_SIZE = 8192
PAGE_SIZE = 0x1000
HUGE_PAGE = 0x200000
DEFAULT_MEM = 512 << 20
MAX_MEM = 1 << 32

# page-table entry bits
PTE_P = 1 << 0
PTE_RW = 1 << 1
PTE_PS = 1 << 7

# --- boot info (spec 3.5) --------------------------------------------------
# mem_size, kernel_end, cpu_cycle_freq, cmdline, mft, host_features,
# guest_features, net_ring
BOOT_INFO = struct.Struct("<QQQQQIIQ")
HVT_FEATURE_RING_IO = 1

# --- hypercalls (spec 4) -----------------------------------------------------
HYPERCALL_PIO_BASE = 0x500
RING_KICK_PORT = 0x600
HALT_COOKIE_MAX = 512


class Hypercall(enum.IntEnum):
    WALLTIME = 1
    PUTS = 2
    POLL = 3
    BLOCK_WRITE = 4
    BLOCK_READ = 5
    NET_WRITE = 6
    NET_READ = 7
    HALT = 8


HYPERCALL_MAX = max(Hypercall)


class Result(enum.IntEnum):
    """solo5_result_t."""

    OK = 0
    AGAIN = 1
    EINVAL = 2
    EUNSPEC = 3


WALLTIME = struct.Struct("<Q")                 # nsecs
PUTS = struct.Struct("<QQ")                    # data, len
POLL = struct.Struct("<QQi4x")                 # timeout_nsecs, ready_set, ret
BLOCK = struct.Struct("<QQQQi4x")              # handle, offset, data, len, ret
NET = struct.Struct("<QQQi4x")                 # handle, data, len, ret
HALT = struct.Struct("<Qi4x")                  # cookie, exit_status
# The `ret` field alone: a handler writes its result back without repacking
# the whole struct (BLOCK's sits after its four u64s).
RET = struct.Struct("<i")
BLOCK_RET_OFFSET = struct.calcsize("<QQQQ")

# x86 trap frame passed as a HALT cookie by the bindings (spec 4.4)
TRAP_FRAME = struct.Struct("<7Q")
TRAP_FRAME_FIELDS = ("cr2", "ec", "rip", "cs", "rflags", "rsp", "ss")   # its order

# --- manifest (spec 2.6) -----------------------------------------------------
MFT_HEADER = struct.Struct("<II")              # version, entries
MFT_ENTRY = struct.Struct("<68sI16sQ?7x")      # name type u b attached
MFT_NAME_SIZE = 68
MFT_NAME_MAX = 67
MFT_MAX_ENTRIES = 64
MFT_USER_MAX = MFT_MAX_ENTRIES - 1


class DeviceType(enum.IntEnum):
    BLOCK_BASIC = 1
    NET_BASIC = 2
    RESERVED_FIRST = 0x40000000


# --- notes (spec 2.5) --------------------------------------------------------
NOTE_NAME = b"Solo5\x00"
NOTE_TYPE_ABI = 0x31494241     # "ABI1"
NOTE_TYPE_MFT = 0x3154464D     # "MFT1"
ABI_NOTE_ALIGN = 4
ABI_NOTE_MAX = 32
MFT_NOTE_ALIGN = 8
MFT_NOTE_MAX = 6668
ABI_PAYLOAD = struct.Struct("<IIII")           # target, version, reserved0/1

# --- net ring (spec 5.2; served in csrc/ring.c) -------------------------------
RING_STRUCT_SIZE = 49280

SOLO5_EXIT_ABORT = 255
DEFAULT_BLOCK_SIZE = 512


def valid_block_size(size: int) -> bool:
    """--block-sector-size: a power of two, at least 512, fits a u16."""
    return 512 <= size <= 0xFFFF and size & (size - 1) == 0
