"""Capsicum rights as FreeBSD's cap_rights_init() encodes them, and which
rights each kind of descriptor the tender holds keeps (BHYVE_SPEC 9).

Pure data. Sources (read through the search tool, not copied):
- freebsd/freebsd-src sys/sys/capsicum.h @ 6e225b56: CAPRIGHT(idx, bit) =
  (1 << (57 + idx)) | bit, and every CAP_* bit below (index 0: READ 0x1,
  WRITE 0x2, SEEK_TELL 0x4, SEEK = SEEK_TELL | 0x8, MMAP 0x10, CREATE 0x40,
  FSYNC 0x100, LOOKUP 0x400, FSTAT 0x80000; index 1: EVENT 0x20,
  KQUEUE_EVENT 0x40, IOCTL 0x80); CAP_NONE puts CAP_RIGHTS_VERSION << 62
  into word 0; CAPIDXBIT(right) = (right >> 57) & 0x1f.
- sys/sys/caprights.h (same tree): CAP_RIGHTS_VERSION = CAP_RIGHTS_VERSION_00
  = 0 and struct cap_rights { uint64_t cr_rights[CAP_RIGHTS_VERSION + 2]; }.
- sys/kern/subr_capability.c (__cap_rights_init, cap_rights_vset): start
  from CAP_NONE, then OR each right into the word its index bit names
  (index bit 1 -> word 0, 2 -> word 1), refusing a right with version bits.
"""

from __future__ import annotations

from enum import Enum

CAP_RIGHTS_VERSION = 0
WORDS = CAP_RIGHTS_VERSION + 2
_INDEX_SHIFT = 57
_VERSION_SHIFT = 62


def capright(idx: int, bit: int) -> int:
    return (1 << (_INDEX_SHIFT + idx)) | bit


# Index 0.
CAP_READ = capright(0, 0x1)
CAP_WRITE = capright(0, 0x2)
CAP_SEEK_TELL = capright(0, 0x4)
CAP_SEEK = CAP_SEEK_TELL | 0x8
CAP_MMAP = capright(0, 0x10)
CAP_MMAP_R = CAP_MMAP | CAP_SEEK | CAP_READ
CAP_MMAP_W = CAP_MMAP | CAP_SEEK | CAP_WRITE
CAP_MMAP_RW = CAP_MMAP_R | CAP_MMAP_W
CAP_CREATE = capright(0, 0x40)
CAP_FSYNC = capright(0, 0x100)
CAP_LOOKUP = capright(0, 0x400)
CAP_FSTAT = capright(0, 0x80000)
# Index 1.
CAP_EVENT = capright(1, 0x20)
CAP_KQUEUE_EVENT = capright(1, 0x40)
CAP_IOCTL = capright(1, 0x80)


def rights_words(*rights: int) -> tuple[int, int]:
    """cr_rights[] after cap_rights_init(&r, rights...): both words carry
    their index bit even when empty (CAP_NONE)."""
    words = [CAP_RIGHTS_VERSION << _VERSION_SHIFT | capright(0, 0), capright(1, 0)]
    for right in rights:
        if right >> _VERSION_SHIFT or not 0 <= right < 1 << 64:
            raise ValueError(f"not a version-0 Capsicum right: 0x{right:x}")
        index = (right >> _INDEX_SHIFT) & 0x1F
        if index not in (1, 2):     # exactly one index bit, and a word we have
            raise ValueError(f"Capsicum right 0x{right:x} has no valid index bit")
        words[index.bit_length() - 1] |= right
    return words[0], words[1]


class FdKind(Enum):
    """A descriptor the tender holds once it is sandboxed, by what it is."""

    VM = "the VM fd"
    VMMCTL_DESTROY = "the vmmctl fd (destroy at exit)"     # 15.0
    VMMCTL_HELD = "the vmmctl fd (destroy on close)"       # main: only closed
    TAP = "a tap fd"
    BLOCK = "a block image fd"
    WAITSET = "the kqueue fd"
    KICK_READ = "the kick pipe's read end"
    KICK_WRITE = "the kick pipe's write end"
    CONSOLE = "the console fd"
    DUMPCORE_DIR = "the dumpcore directory fd"


# Why each kind needs what it keeps. BHYVE_SPEC 9 gives VM, TAP, BLOCK and
# DUMPCORE_DIR; the rest are pytender's own descriptors.
RIGHTS: dict[FdKind, tuple[int, ...]] = {
    # Boot ioctls, VM_RUN, and the guest RAM mapping (made after the limit:
    # mmap's dup of the fd inherits it).
    FdKind.VM: (CAP_IOCTL, CAP_MMAP_RW),
    FdKind.VMMCTL_DESTROY: (CAP_IOCTL,),
    FdKind.VMMCTL_HELD: (),
    FdKind.TAP: (CAP_EVENT, CAP_READ, CAP_WRITE),
    # pread/pwrite; FSYNC for the fdatasync the block device does at
    # flush and teardown (Solo5's block module has none, so 9 omits it).
    FdKind.BLOCK: (CAP_READ, CAP_WRITE, CAP_SEEK, CAP_FSYNC),
    # kevent() with no changes: every registration is made before.
    FdKind.WAITSET: (CAP_KQUEUE_EVENT,),
    FdKind.KICK_READ: (CAP_READ,),
    FdKind.KICK_WRITE: (CAP_WRITE,),
    # Guest output and the tender's own lines; SEEK and FSTAT for a console
    # that is a regular file (Python's buffered stdout may tell() on it).
    FdKind.CONSOLE: (CAP_WRITE, CAP_SEEK, CAP_FSTAT),
    FdKind.DUMPCORE_DIR: (CAP_CREATE, CAP_WRITE, CAP_LOOKUP, CAP_SEEK),
}
