"""MSRs: deny by default (issue 9, Solo5 #611).

A KVM MSR filter (KVM_X86_SET_MSR_FILTER, default deny) lets through only
ALLOWED; KVM_CAP_X86_USER_SPACE_MSR with KVM_MSR_EXIT_REASON_FILTER sends
every denied RDMSR/WRMSR to the vCPU loop, which refuses it (the guest gets
#GP) and counts it. Host-initiated accesses (KVM_SET_SREGS, KVM_SET_MSRS)
are not filtered, so the tender's own set-up needs no entry."""

from __future__ import annotations

from tender.errors import KvmError
from tender.kvm import ioctls as k
from tender.kvm.vmfd import VmFd
from tender.record import record


@record(frozen=True)
class Allowed:
    msr: int
    read: bool
    write: bool
    why: str


# Found by measuring (every guest of ours, --trace with an empty list): the
# only MSR a guest touches. Reading and writing TSC, EFER, the kvmclock and
# every other MSR is refused.
ALLOWED = (
    Allowed(0xC0000100, True, True, "FS_BASE: the TLS / stack-protector base"),
)

KVMCLOCK_MSRS = (0x11, 0x12, 0x4B564D00, 0x4B564D01)


@record(frozen=True)
class FilterRange:
    flags: int          # MSR_FILTER_READ | MSR_FILTER_WRITE
    base: int
    bitmap: bytes       # bit i: MSR base + i allowed


def ranges(allowed: tuple[Allowed, ...] = ALLOWED) -> tuple[FilterRange, ...]:
    """Pure: one one-MSR range per allowed direction (a handful at most)."""
    out = []
    for a in allowed:
        flags = (k.MSR_FILTER_READ if a.read else 0) | (k.MSR_FILTER_WRITE if a.write else 0)
        if flags:
            out.append(FilterRange(flags, a.msr, b"\x01"))
    if not out:
        # KVM refuses a deny-by-default filter without a range: deny MSR 0 explicitly.
        out.append(FilterRange(k.MSR_FILTER_READ | k.MSR_FILTER_WRITE, 0, b"\x00"))
    if len(out) > k.MSR_FILTER_MAX_RANGES:
        raise ValueError("too many MSR filter ranges")
    return tuple(out)


def install(vm: VmFd, allowed: tuple[Allowed, ...] = ALLOWED) -> str | None:
    """Install the filter on `vm`; returns a warning instead where the host
    KVM lacks the filter or user-space MSR exits (then nothing changes)."""
    for cap, name in ((k.CAP_X86_USER_SPACE_MSR, "KVM_CAP_X86_USER_SPACE_MSR"),
                      (k.CAP_X86_MSR_FILTER, "KVM_CAP_X86_MSR_FILTER")):
        if vm.check_extension(cap) <= 0:
            return f"warning: host KVM lacks {name}: guest MSR accesses are not filtered"
    try:
        # An older KVM knows the cap but not this exit reason: EINVAL.
        vm.enable_cap(k.CAP_X86_USER_SPACE_MSR, k.MSR_EXIT_REASON_FILTER)
    except KvmError as exc:
        return f"warning: {exc.message}: guest MSR accesses are not filtered"
    from tender._vcpu import ffi

    rs = ranges(allowed)
    # The bitmaps only need to live through the ioctl: KVM copies them.
    bitmaps = [ffi.new("__u8[]", r.bitmap) for r in rs]
    vm.set_msr_filter(k.new("kvm_msr_filter", {
        "flags": k.MSR_FILTER_DEFAULT_DENY,
        "ranges": [{"flags": r.flags, "base": r.base, "nmsrs": 8 * len(r.bitmap),
                    "bitmap": bm} for r, bm in zip(rs, bitmaps, strict=True)],
    }))
    return None
