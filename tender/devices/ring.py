"""The net ring (HVT_FEATURE_RING_IO, spec 5): eventfd + ioeventfd on port
0x600 + the C I/O thread of csrc/ring.c.

Offering the ring is best effort, as upstream: if the eventfd, the
ioeventfd or the thread cannot be set up, a warning is printed and the
guest uses the NET_READ / NET_WRITE hypercalls. The ring memory stays
reserved either way (the layout does not depend on the outcome)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RingStats:
    writes: int
    reads: int
    kicks: int


class NetRing:
    """A running I/O thread. `stop()` is idempotent (halt hook + teardown)."""

    def __init__(self, handle: Any, efd: int) -> None:
        self._handle = handle
        self._efd = efd
        self.stats: RingStats | None = None

    @classmethod
    def start(
        cls,
        register_kick: Callable[[int], None] | None,
        view: Any,
        ring_gpa: int,
        prog: str,
        warn: Callable[[str], None],
    ) -> NetRing | None:
        """`register_kick(efd)` makes every 4-byte OUT to port 0x600 signal
        efd in the kernel (KVM_IOEVENTFD); None when the hypervisor has no
        such thing. `view` is a filled `struct vl_vcpu *` (bounds, read-only
        ranges, devices). Returns None (after a warning) when the ring
        cannot run."""
        from tender._vcpu import ffi, lib

        if register_kick is None:
            warn("KVM_CAP_IOEVENTFD not available, falling back to hypercalls")
            return None
        try:
            efd = os.eventfd(0, os.EFD_CLOEXEC)
        except OSError as exc:
            warn(f"eventfd() failed: {exc.strerror}, falling back to hypercalls")
            return None
        try:
            register_kick(efd)
        except Exception as exc:   # KvmError or OSError: either way, no ring
            os.close(efd)
            warn(f"KVM_IOEVENTFD failed ({exc}), falling back to hypercalls")
            return None
        err = ffi.new("char[]", 256)
        handle = lib.vl_ring_start(view, ring_gpa, efd, prog.encode(), err, 256)
        if handle == ffi.NULL:
            # The ioeventfd stays registered with the eventfd; nobody reads
            # it, which is harmless: the guest will never kick (no feature).
            warn(f"could not start the net I/O thread: "
                 f"{ffi.string(err).decode(errors='replace')}, falling back to hypercalls")
            os.close(efd)
            return None
        return cls(handle, efd)

    def stop(self) -> None:
        if self._handle is None:
            return
        from tender._vcpu import ffi, lib

        st = ffi.new("struct vl_ring_stats *")
        lib.vl_ring_stop(self._handle, st)
        self._handle = None
        self.stats = RingStats(int(st.writes), int(st.reads), int(st.kicks))
        os.close(self._efd)
        self._efd = -1
