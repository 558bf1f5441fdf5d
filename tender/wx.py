"""Pure: guest W^X policy (issue 9): which pages the guest's own page tables
map executable or writable, and how a guest abort that came from breaking
that rule is reported.

On Linux/KVM the host mapping cannot take execute rights away from the
guest (KVM maps guest RAM executable whatever PROT_EXEC says), so NX lives
in the guest page tables. A fetch from an NX page is then a guest #PF: the
guest's own handler runs and aborts through HALT with a trap frame, and the
tender recognises the fault from that frame. Writes to text, rodata or the
tender's low memory behind the guest's back (CR0.WP cleared, its own CR3)
still hit the host-side protection (mprotect / read-only memslot)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from tender import abi
from tender.elf import Segment
from tender.layout import Ranges, WxMap

PF_X = 1
PF_W = 2

# #PF error code bits (Intel SDM vol. 3, 4.7)
PFEC_P = 1 << 0         # the page was present: a protection violation
PFEC_W = 1 << 1         # the access was a write
PFEC_RSVD = 1 << 3      # a reserved bit was set in an entry
PFEC_I = 1 << 4         # the access was an instruction fetch (needs EFER.NXE)

MAX_INSN = 15           # an instruction that straddles two pages faults on the second

# The tender's own low memory: GDT, page tables, boot info, manifest copy,
# command line. Read-only to the guest in every mode but --wx=off.
LOW_MEMORY = (0, abi.GUEST_MIN_BASE)

SOLO5_EXIT_ABORT = 255


def wx_map(segments: Iterable[Segment]) -> WxMap:
    """ELF segment flags -> W^X paging: PF_X segments R+X, segments without
    PF_W read-only and NX, everything else (data, bss, heap, stack) RW+NX."""
    segs = tuple(segments)
    return WxMap(
        text=tuple((s.start, s.end) for s in segs if s.flags & PF_X),
        read_only=tuple((s.start, s.end) for s in segs if not s.flags & (PF_X | PF_W)),
    )


def fault_message(rip: int) -> str:
    """The default fault line (KVM's EFAULT line of HVT_SPEC.md 4.5, as
    OpenBSD's tender reports these guests); a run passes its backend's
    `translation_fault` instead."""
    return f"KVM: host/guest translation fault: rip=0x{rip:x}"


def classify_abort(status: int, frame: tuple[int, ...] | None, protected: Ranges,
                   line: Callable[[int], str] = fault_message) -> str | None:
    """A guest abort caused by W^X -> the fault line, else None.

    `frame` is the trap frame the guest handed to HALT (cr2, ec, rip, cs,
    rflags, rsp, ss); it carries no vector, so a #PF is recognised from its
    error code and CR2: a protection fault on an instruction fetch at rip,
    or a protection fault on a write into `protected` (the host-read-only
    ranges and the tender's low memory). A reserved-bit fault, a not-present
    page or any other trap stays the guest's own abort."""
    if status != SOLO5_EXIT_ABORT or frame is None or len(frame) < 3:
        return None
    cr2, ec, rip = frame[0], frame[1], frame[2]
    if ec & (PFEC_P | PFEC_RSVD) != PFEC_P:
        return None
    if ec & PFEC_I and rip <= cr2 < rip + MAX_INSN:
        return line(rip)
    if ec & PFEC_W and not ec & PFEC_I and any(s <= cr2 < e for s, e in protected):
        return line(rip)
    return None


__all__ = ["LOW_MEMORY", "classify_abort", "fault_message", "wx_map"]
