"""The bhyve backend (tender.backend.RunBackend) over a Host.

There is no C run loop here (csrc/vcpu_loop.c is KVM's): run() issues
VM_RUN from Python and decodes each exit. With native handlers the
hypercalls that have a C twin are still served in C, by calling the
backend-neutral twins (csrc/hypercalls.c, vl_serve) between exits, so
native and python mode mean on bhyve what they mean on KVM. Untested on
real FreeBSD (tests/test_bhyve_run.py replays exits from a fake host)."""

from __future__ import annotations

import ctypes
import errno
import mmap
from typing import TYPE_CHECKING, Any

from tender import abi
from tender.bhyve import boot, exits, ioc, lifecycle
from tender.bhyve import structs as s
from tender.bhyve.debug import BhyveDebugView, BhyveStatsView
from tender.bhyve.host import FreeBsdHost, Host
from tender.debugview import DebugView
from tender.errors import GuestFault, TenderError
from tender.exits import (
    Exit,
    Fatal,
    GuestWrite,
    HandlerFailed,
    Hypercall,
    Interrupted,
    KickMode,
    Retry,
)
from tender.freebsd.capsicum import Capsicum
from tender.freebsd.rights import FdKind
from tender.layout import CpuPlan

if TYPE_CHECKING:
    from tender.backend import StatsView

ALL_HYPERCALLS = frozenset(range(1, abi.HYPERCALL_MAX + 1))


class BhyveBackend:
    name = "bhyve"
    # vmm maps its own memory object into the guest: host mprotect does not
    # reach the guest, so W^X is not enforced for the guest on FreeBSD.
    host_protection_effective = False
    # No ioeventfd: the kick is a real exit and the loop writes to a pipe.
    kick_mode = KickMode.EXIT

    def __init__(self, host: Host, capsicum: Capsicum | None = None) -> None:
        self._host = host
        # The run's sandbox (tender/freebsd/): this backend limits its own
        # fds as it opens them; tender/sandbox.py the rest, then cap_enter.
        self.capsicum = capsicum
        self._vm: lifecycle.Vm | None = None
        self._mem: mmap.mmap | None = None
        self._abi = ioc.abi_for(boot.osreldate(host))
        # Kept alive for the whole loop: the kernel copies the exit out to it.
        self._exit_buf = ctypes.create_string_buffer(s.VM_EXIT_BUFFER)
        self._run_arg = bytearray()
        # Numbers the core has a handler for; the core checks its own table
        # too, with the same message.
        self.handled: frozenset[int] = ALL_HYPERCALLS
        self._view: Any = None      # struct vl_vcpu * while entered
        self._vl_exit: Any = None

    @property
    def abi(self) -> ioc.Abi:
        return self._abi

    def _fd(self) -> int:
        if self._vm is None:
            raise lifecycle.BhyveError("VM is not open")
        return self._vm.fd

    # --- Backend ------------------------------------------------------------
    def open(self, alloc: int) -> mmap.mmap:
        self._vm = lifecycle.create(self._host, lifecycle.vm_name(self._host.getpid()),
                                    self.capsicum)
        try:
            if self.capsicum is not None:
                # Before the mmap: its duplicate of the fd keeps these rights.
                self.capsicum.limit(FdKind.VM, self._vm.fd, ioc.vm_fd_ioctls(self._abi))
            self._mem = boot.setup_memory(self._host, self._vm.fd, self._abi, alloc)
        except BaseException:
            self.close()
            raise
        return self._mem

    def map_readonly(self, gpa: int, length: int) -> None:
        """Nothing to do guest-side: vmm cannot narrow its guest mapping."""

    def tsc_hz(self) -> int:
        return boot.tsc_hz(self._host)

    def boot(self, plan: CpuPlan) -> None:
        boot.setup_cpu(self._host, self._fd(), plan)
        if self._abi.vm_run == ioc.VM_RUN_14:
            self._run_arg = bytearray(s.struct_bytes(s.VmRun(
                cpuid=0, cpuset=0, cpusetsize=0, vm_exit=ctypes.addressof(self._exit_buf))))
        else:
            self._run_arg = bytearray(s.struct_bytes(s.VmRun13(cpuid=0)))

    def run(self) -> Exit:
        """The next exit the core must see: native twins (when entered with
        a native mask) are served here and never reach it."""
        while True:
            ex = self._run_once()
            if not isinstance(ex, Hypercall) or not self._native(ex.nr):
                return ex
            if (stop := self._serve(ex)) is not None:
                return stop

    def _run_once(self) -> Exit:
        view = self._view
        if view is not None and (failed := _ring_failure(view)) is not None:
            return HandlerFailed(failed)    # the ring's I/O side stopped: end the run
        try:
            self._host.ioctl(self._fd(), self._abi.vm_run, self._run_arg)
        except OSError as exc:
            if exc.errno == errno.EINTR:
                if view is not None:
                    _tally_exit(view, None)
                return Retry()
            raise lifecycle.BhyveError(f"VM_RUN: {exc.strerror}") from None
        if self._abi.vm_run == ioc.VM_RUN_14:
            record = self._exit_buf.raw
        else:
            record = bytes(self._run_arg[8:])
        if view is not None:
            _tally_exit(view, int.from_bytes(record[:4], "little", signed=True))
        return exits.decode(record, self.handled)

    def _native(self, nr: int) -> bool:
        return self._view is not None and bool(self._view.native_mask >> nr & 1)

    def _serve(self, hc: Hypercall) -> Exit | None:
        """One hypercall through its C twin, as vl_run would: None to run on."""
        from tender._vcpu import ffi, lib

        view, e = self._view, self._vl_exit
        view.counts[hc.nr] += 1     # the stats block's array when there is one
        if lib.vl_serve(view, hc.nr, hc.gpa, e) == 0:
            return None
        if e.reason == lib.VL_FATAL:
            return HandlerFailed(ffi.string(e.msg).decode(errors="replace"))
        return Retry()      # VL_EINTR: a blocking twin (POLL) was interrupted

    def interrupted(self) -> Interrupted:
        return Interrupted()

    def close(self) -> None:
        self.leave()
        if self._mem is not None:
            self._mem.close()
            self._mem = None
        if self._vm is not None:
            self._vm.close()

    # --- RunBackend ---------------------------------------------------------
    @property
    def debug_target(self) -> None:
        """No vCPU object: the debug modules use debug_view()."""
        return None

    # Typed as the protocols, so mypy holds the bhyve views to them.
    def debug_view(self) -> DebugView:
        """Registers for dumpcore; gdb is refused (tender/bhyve/debug.py)."""
        return BhyveDebugView(self._host, self._fd())

    def stats_view(self) -> StatsView:
        return BhyveStatsView()

    @property
    def native_part(self) -> None:
        """No C vCPU part (the loop is Python's): a ring failure is noticed
        by run(), not by stopping a C loop."""
        return None

    def ring_kick(self) -> None:
        """No ioeventfd (kick_mode EXIT): the ring uses a pipe instead."""
        return None

    def guest_readonly(self, gpa: int, length: int) -> bool:
        return False    # the host mprotects; the guest's view is unchanged (W^X off)

    def enter(self, view: Any, signals: tuple[int, ...], observed: bool = False) -> None:
        """Each of `signals` must interrupt VM_RUN (BOGUS or EINTR), never
        end the process: the C kick handler, with no run page to flag,
        only chains to the handler installed before it."""
        from tender._vcpu import ffi, lib

        self._view = view
        self._vl_exit = ffi.new("struct vl_exit *")
        for sig in signals:
            lib.vl_install_kick(ffi.NULL, sig)

    def leave(self) -> None:
        if self._view is None:
            return
        from tender._vcpu import lib

        lib.vl_clear_kick()
        self._view = self._vl_exit = None

    def exit_error(self, exit: Exit) -> TenderError:
        if isinstance(exit, Fatal):
            head, *rest = exit.lines
            if head.startswith("Invalid guest"):
                return GuestFault(head)
            # The VMX dump (BHYVE_SPEC 7.2) as one line: "name=value, ...".
            fields = ", ".join("=".join(line.split()) for line in rest)
            return lifecycle.BhyveError(f"{head} {fields}" if fields else head)
        if isinstance(exit, GuestWrite):
            return GuestFault("host/guest translation fault")
        return lifecycle.BhyveError(f"unexpected exit {exit!r}")

    def translation_fault(self, rip: int) -> str:
        # vmm has no EFAULT line of its own: KVM's wording without "KVM".
        return f"host/guest translation fault: rip=0x{rip:x}"


def _tally_exit(view: Any, exitcode: int | None) -> None:
    """What vl_run counts on KVM: each VM_RUN return by exit code (the
    stats view names them by vm_exitcode), or an interrupted one (None)."""
    from tender._vcpu import ffi, lib

    if view.stats == ffi.NULL:
        return
    if exitcode is None:
        view.stats.vcpu.interrupted += 1
    else:
        last = lib.VL_EXIT_KINDS - 1    # the slot for every code beyond
        view.stats.vcpu.exits[exitcode if 0 <= exitcode < last else last] += 1


def _ring_failure(view: Any) -> str | None:
    from tender._vcpu import ffi, lib

    if view.ring == ffi.NULL:
        return None
    msg = ffi.new("char[]", 256)
    if not lib.vl_ring_failed(view.ring, msg, 256):
        return None
    return str(ffi.string(msg).decode(errors="replace"))


def open_bhyve(host: Host | None = None, capsicum: Capsicum | None = None) -> BhyveBackend:
    """The backend for a FreeBSD run (tender/host.py); `host` and
    `capsicum`: the real calls (libc's Capsicum) unless a test's. None of
    KVM's optional hardening applies, so there is nothing to warn about
    (W^X for the guest cannot be had, README); --gdb is refused by the
    debug view."""
    return BhyveBackend(host if host is not None else FreeBsdHost(),
                        capsicum if capsicum is not None else Capsicum.load())
