"""The net ring (HVT_FEATURE_RING_IO, spec 5): eventfd + ioeventfd on port
0x600 + the C I/O thread of csrc/ring.c, or the same ring served inline.

Offering the ring is best effort, as upstream: if the eventfd, the
ioeventfd or the thread cannot be set up, a warning is printed and the
guest uses the NET_READ / NET_WRITE hypercalls. The ring memory stays
reserved either way (the layout does not depend on the outcome).

Who serves it (`ring_mode`): the I/O thread spins, then sleeps until the
guest kicks; every sleep costs a cross-CPU wake-up on the guest's critical
path (its reads are synchronous). With CPUs to spare that is cheap; where
the thread must share a CPU with the vCPU thread (2 CPUs, a busy host) the
wake-up costs more than the VM exits the ring saves, and the ring ran
slower than the hypercalls (bench/net.py). There the vCPU thread serves
the ring inline instead: each kick is an IO exit, handled in C."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from tender.devices.kickpipe import PipeKick, open_kick
from tender.errors import DeviceError, GuestFault
from tender.record import record

RING_MODES = ("thread", "inline")
# The thread pays for itself when it can spin on a CPU of its own: one for
# the vCPU, one for the I/O thread, one for the rest (the peer, the kernel).
THREAD_MIN_CPUS = 4


def ring_mode() -> str:
    """`thread` or `inline`: PYTENDER_RING_MODE if set (benchmarks), else
    by the CPUs this process may run on."""
    forced = os.environ.get("PYTENDER_RING_MODE", "")
    if forced in RING_MODES:
        return forced
    # sched_getaffinity is Linux's; elsewhere (FreeBSD) count every CPU.
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return "thread" if (cpus or 1) >= THREAD_MIN_CPUS else "inline"


@record(frozen=True)
class RingStats:
    """What the I/O thread served (counted in C)."""

    writes: int
    reads: int
    kicks: int


class NetRing:
    """A running I/O thread. `stop()` is idempotent (halt hook + teardown)."""

    def __init__(self, handle: Any, efd: int, vcpu_part: Any,
                 pipe: PipeKick | None = None) -> None:
        # efd -1: inline mode (no thread; the run loop serves the kicks)
        self._handle = handle
        self._efd = efd
        # The backend's vCPU part the thread may stop (None: the host has
        # none, as on bhyve); the run closes the backend only after stop().
        self._vcpu_part = vcpu_part
        self._pipe = pipe           # kick-by-exit hosts: the thread reads its read end
        self.stats: RingStats | None = None

    @classmethod
    def start(
        cls,
        register_kick: Callable[[int], None] | None,
        view: Any,
        ring_gpa: int,
        vcpu_part: Any,
        kick_signal: int,
        warn: Callable[[str], None],
    ) -> NetRing | None:
        """`register_kick(efd)` makes every 4-byte OUT to port 0x600 signal
        efd in the kernel (KVM: an ioeventfd); None when the hypervisor has no
        such thing. `view` is a filled `struct vl_vcpu *` (bounds, read-only
        ranges, devices). Must be called on the thread that will run the
        vCPU (`vcpu_part`: the backend's `struct vl_backend *`): on a fatal
        error the I/O thread stops that vCPU and sends the thread
        `kick_signal`. Returns None (after a warning) when the ring cannot
        run. Inline mode (see ring_mode) needs no eventfd and no thread: the
        guest's kicks exit to vl_run, which serves them."""
        if register_kick is None:
            return None     # no in-kernel kick (KVM: no ioeventfd): no ring, silently (spec 5.1)
        if ring_mode() == "inline":
            return cls._start(view, ring_gpa, -1, vcpu_part, kick_signal, warn)
        try:
            efd = os.eventfd(0, os.EFD_CLOEXEC)
        except OSError as exc:
            warn(f"eventfd() failed: {exc.strerror}, falling back to hypercalls")
            return None
        try:
            register_kick(efd)
        except Exception as exc:   # the backend's error (it names its host) or OSError
            os.close(efd)
            warn(f"the ring kick could not be registered ({exc}), falling back to hypercalls")
            return None
        return cls._start(view, ring_gpa, efd, vcpu_part, kick_signal, warn)

    @classmethod
    def start_piped(cls, view: Any, ring_gpa: int, kick_signal: int,
                    warn: Callable[[str], None]) -> NetRing | None:
        """For a host whose guest kicks are real exits (bhyve, BHYVE_SPEC
        8.4): the run loop calls kick() on each. Thread mode: kick() writes
        one byte to a pipe whose read end the I/O thread blocks on. Inline
        mode: kick() serves the ring on the calling (vCPU) thread."""
        if ring_mode() == "inline":
            return cls._start(view, ring_gpa, -1, None, kick_signal, warn)
        pipe = open_kick()
        if pipe is None:
            warn("pipe() failed, falling back to hypercalls")
            return None
        ring = cls._start(view, ring_gpa, pipe.read_fd, None, kick_signal, warn)
        if ring is None:
            pipe.read_fd = -1   # _start closed it
            pipe.close()
            return None
        from tender._vcpu import lib

        lib.vl_ring_set_wake(ring._handle, pipe.write_fd)
        ring._efd = -1          # the pipe's, closed with it
        ring._pipe = pipe
        return ring

    def kick(self) -> None:
        """The guest kicked port 0x600 and the host reported it as an exit.
        A failure of the inline serve is the run's: the next run() reports it."""
        if self._handle is None:
            return
        if self._pipe is not None:
            self._pipe.kick()
            return
        from tender._vcpu import lib

        lib.vl_ring_kick(self._handle)

    @classmethod
    def _start(cls, view: Any, ring_gpa: int, efd: int, vcpu_part: Any, kick_signal: int,
               warn: Callable[[str], None]) -> NetRing | None:
        """`vcpu_part` None: the host has no vCPU part to stop (bhyve)."""
        from tender._vcpu import ffi, lib

        err = ffi.new("char[]", 256)
        view.backend = ffi.NULL if vcpu_part is None else vcpu_part
        handle = lib.vl_ring_start(view, ring_gpa, efd, kick_signal, err, 256)
        if handle == ffi.NULL:
            # The ioeventfd stays registered with the eventfd; nobody reads
            # it, which is harmless: the guest will never kick (no feature).
            warn(f"could not start the net I/O thread: "
                 f"{ffi.string(err).decode(errors='replace')}, falling back to hypercalls")
            if efd >= 0:
                os.close(efd)
            return None
        return cls(handle, efd, vcpu_part)

    @property
    def handle(self) -> Any:
        """The `struct vl_ring *` for vl_vcpu.ring (ffi.NULL once stopped)."""
        from tender._vcpu import ffi

        return ffi.NULL if self._handle is None else self._handle

    def kick_fds(self) -> tuple[int, int] | None:
        """The kick pipe's (read end, write end), or None (no pipe)."""
        pipe = self._pipe
        return None if pipe is None or pipe.read_fd < 0 else (pipe.read_fd, pipe.write_fd)

    def stop(self) -> None:
        if self._handle is None:
            return
        from tender._vcpu import ffi, lib

        st = ffi.new("struct vl_ring_stats *")
        msg = ffi.new("char[]", 256)
        # The thread may have failed on what the guest posted just before it
        # halted, even in its final drain: that is still the run's failure,
        # so it is read only after the join.
        failed = lib.vl_ring_stop(self._handle, st, msg, 256)
        self._handle = None
        self.stats = RingStats(int(st.writes), int(st.reads), int(st.kicks))
        if self._efd >= 0:
            os.close(self._efd)
        self._efd = -1
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
        self._vcpu_part = None
        if failed:
            text = ffi.string(msg).decode(errors="replace")
            raise (GuestFault if text.startswith("Invalid guest") else DeviceError)(text)
