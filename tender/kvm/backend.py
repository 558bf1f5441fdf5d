"""The KVM backend: tender.backend.RunBackend over /dev/kvm and the C loop.

The hot path stays in C: vl_run loops over KVM_RUN and serves the native
twins itself; only what reaches Python is decoded here, once, into the
core's typed exits. Everything that knows a kvm_run field, a KVM exit
reason or what an errno from KVM_RUN means lives in this file."""

from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Callable

from tender import abi, wx
from tender.config import CpuidMode
from tender.errors import GuestFault, HostError, KvmError, TenderError
from tender.exits import (
    Exit,
    Fatal,
    GuestWrite,
    HandlerFailed,
    HostExit,
    Hypercall,
    KickMode,
    Retry,
)
from tender.kvm import cpuid, msr
from tender.kvm import ioctls as k
from tender.kvm import setup as ksetup
from tender.kvm.memslots import map_ram
from tender.kvm.statsview import KvmStatsView
from tender.kvm.system import Kvm
from tender.kvm.vcpu import VcpuFd
from tender.kvm.vmfd import VmFd
from tender.layout import CpuPlan
from tender.record import record

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from typing import Any

    from tender.kvm.debug import KvmDebugView

# Imported up front, with the rest of the run path (setup imports it lazily):
# out of fds, an import fails here, as a HostError, not mid-run.
_UP_FRONT = (cpuid,)


@record(frozen=True)
class KvmExit(HostExit):
    """A KVM exit the C loop did not handle (`reason` is kvm_run.exit_reason)."""

    suberror: int = 0
    fail_reason: int = 0
    mmio_addr: int = 0
    mmio_is_write: bool = False
    msr_index: int = 0
    msr_data: int = 0

    def _msr(self) -> bool:
        return self.reason in (k.EXIT_X86_RDMSR, k.EXIT_X86_WRMSR)

    def resume(self) -> bool:
        # The C loop already refused it (#GP); it is here only to be traced.
        return self._msr()

    def trace_fields(self) -> dict[str, object]:
        if not self._msr():
            return {}
        write = self.reason == k.EXIT_X86_WRMSR
        # An MSR access the filter refused: the guest got #GP.
        rec: dict[str, object] = {"msr": f"0x{self.msr_index:x}",
                                  "access": "write" if write else "read", "refused": True}
        if write:
            rec["data"] = f"0x{self.msr_data:x}"
        return rec


def _port_exit(port: int, direction: int, size: int, data: int) -> Exit:
    """A hypercall is a 4-byte OUT to one of the hvt ports (spec 4)."""
    if direction != 1 or size != 4 or not (
        abi.HYPERCALL_PIO_BASE <= port <= abi.HYPERCALL_PIO_BASE + abi.HYPERCALL_MAX
    ):
        return Fatal((f"Invalid guest port access: port=0x{port:x}",))
    return Hypercall(port - abi.HYPERCALL_PIO_BASE, data)


class KvmBackend:
    """One KVM VM with vCPU 0. Attributes are None until open()."""

    name = "kvm"
    # KVM reads guest memory through the host page tables: mprotect works.
    host_protection_effective = True
    kick_mode = KickMode.EVENTFD

    def __init__(self, *, cpuid: CpuidMode = CpuidMode.HOST, msr_filter: bool = False,
                 read_only_below: int = 0, warn: Callable[[str], None] | None = None) -> None:
        """`read_only_below`: guest memory [0, that) is the tender's and goes
        in a read-only memslot where KVM has them (W^X)."""
        self._cpuid = cpuid
        self._msr_filter = msr_filter
        self._read_only_below = read_only_below
        self._low_slot = False
        self._warn = warn
        self._kvm: Kvm | None = None
        self._vm: VmFd | None = None
        self._vcpu: VcpuFd | None = None
        self._alloc = 0
        self._view: Any = None
        self._exit: Any = None

    # --- Backend ------------------------------------------------------------
    def open(self, alloc: int) -> mmap.mmap:
        """Step 7 in solo5-hvt's order: system fd, VM, vCPU, memory, memslot.
        On failure the caller's close() releases what was made."""
        self._kvm = Kvm()
        self._vm = self._kvm.create_vm()
        if self._msr_filter:
            if (warning := msr.install(self._vm)) is not None and self._warn is not None:
                self._warn(warning)
        self._vcpu = self._vm.create_vcpu(0)
        try:
            ram = mmap.mmap(-1, alloc, mmap.MAP_SHARED | mmap.MAP_ANONYMOUS,
                            mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError:     # the host's memory, not KVM's: HostError, as in memory.py
            raise HostError("Error allocating guest memory") from None
        try:
            self._low_slot = map_ram(self._vm, _address(ram), alloc, self._read_only_below)
        except BaseException:
            ram.close()
            raise
        self._alloc = alloc
        return ram

    def map_readonly(self, gpa: int, length: int) -> None:
        """Nothing beyond the host mprotect the core does: the memslot
        follows the host page tables."""

    def guest_readonly(self, gpa: int, length: int) -> bool:
        return self._low_slot and gpa + length <= self._read_only_below

    def tsc_hz(self) -> int:
        return ksetup.tsc_hz(self._need_kvm(), self._need_vcpu())

    def boot(self, plan: CpuPlan) -> None:
        vcpu = self._need_vcpu()
        ksetup.setup_cpuid(self._need_kvm(), vcpu, self._cpuid)
        ksetup.setup_sregs(vcpu, plan)
        ksetup.setup_regs(vcpu, plan)

    def run(self) -> Exit:
        from tender._vcpu import ffi, lib

        assert self._view is not None, "enter() first"
        e = self._exit
        lib.vl_run(self._view, e)
        reason = e.reason
        if reason == lib.VL_IO:
            return _port_exit(e.port, e.direction, e.size, e.data)
        if reason == lib.VL_EINTR:
            return Retry()
        if reason == lib.VL_FATAL:
            return HandlerFailed(ffi.string(e.msg).decode(errors="replace"))
        if reason == lib.VL_ERRNO:
            if e.err == errno.EFAULT:
                # Hardware KVM: a guest write to a host-read-only page.
                return GuestWrite(None)
            raise KvmError(f"KVM: ioctl (RUN) failed: {os.strerror(e.err)}")
        x = self._view.backend.exit
        return KvmExit(int(x.reason), int(x.suberror), int(x.fail_reason),
                       int(x.mmio_addr), bool(x.mmio_is_write), int(x.msr_index),
                       int(x.msr_data))

    def close(self) -> None:
        self.leave()
        for part in (self._vcpu, self._vm, self._kvm):
            if part is not None:
                part.close()
        self._vcpu = self._vm = self._kvm = None

    # --- RunBackend ---------------------------------------------------------
    @property
    def debug_target(self) -> VcpuFd:
        return self._need_vcpu()

    def debug_view(self) -> KvmDebugView:
        from tender.kvm.debug import KvmDebugView

        return KvmDebugView(self._need_vcpu())

    @property
    def native_part(self) -> Any:
        """vCPU 0's `struct vl_backend *`: its fd and kvm_run page for the C
        loop, and for the ring thread's stop (immediate_exit)."""
        return self._need_vcpu().native_part

    def stats_view(self) -> KvmStatsView:
        """KVM_GET_STATS_FD of the VM and vCPU fds (tender/kvm/binstats.py)."""
        return KvmStatsView.open(self._vm.fd if self._vm is not None else -1,
                                 self._vcpu.fd if self._vcpu is not None else -1)

    def ring_kick(self) -> Callable[[int], None] | None:
        vm = self._vm
        if vm is None or vm.check_extension(k.CAP_IOEVENTFD) <= 0:
            return None

        def register(efd: int) -> None:
            vm.register_pio_eventfd(abi.RING_KICK_PORT, efd)

        return register

    def enter(self, view: Any, signals: tuple[int, ...], observed: bool = False) -> None:
        from tender._vcpu import ffi, lib

        part = self._need_vcpu().native_part
        view.report_msr = observed      # a trace records each refused MSR access
        view.backend = part
        self._view = view
        self._exit = ffi.new("struct vl_exit *")
        for sig in signals:
            # The handler sets kvm_run.immediate_exit: KVM_RUN returns EINTR
            # even when the signal lands just before the guest enters.
            lib.vl_install_kick(part.run, sig)

    def leave(self) -> None:
        if self._view is None:
            return
        from tender._vcpu import lib

        lib.vl_clear_kick()
        self._view = None

    def exit_error(self, exit: Exit) -> TenderError:
        if isinstance(exit, Fatal):
            line = "; ".join(exit.lines)
            return GuestFault(line) if line.startswith("Invalid guest") else KvmError(line)
        if isinstance(exit, GuestWrite):
            return GuestFault(self.translation_fault(self._rip()))
        if isinstance(exit, KvmExit):
            r = exit.reason
            if r == k.EXIT_FAIL_ENTRY:
                return KvmError(
                    f"KVM: entry failure: hw_entry_failure_reason=0x{exit.fail_reason:x}")
            if r == k.EXIT_INTERNAL_ERROR:
                return KvmError(f"KVM: internal error exit: suberror=0x{exit.suberror:x}")
            rip = self._rip()
            # A guest write to a host-read-only page inside RAM: hardware KVM
            # fails KVM_RUN with EFAULT; some KVMs (kvm_pvm, read-only
            # memslots) report an MMIO write instead. Both are the same fault.
            if r == k.EXIT_MMIO and exit.mmio_is_write and exit.mmio_addr < self._alloc:
                return GuestFault(self.translation_fault(rip))
            return KvmError(f"KVM: unhandled exit: exit_reason=0x{r:x}, rip=0x{rip:x}")
        return KvmError(f"KVM: unexpected exit {exit!r}")

    # --- helpers ------------------------------------------------------------
    def translation_fault(self, rip: int) -> str:
        # Hardware KVM's EFAULT line (HVT_SPEC 4.5), which is wx's default.
        return wx.fault_message(rip)

    def _rip(self) -> int:
        return int(self._need_vcpu().get_regs().rip)

    def _need_kvm(self) -> Kvm:
        if self._kvm is None:
            raise KvmError("internal: KVM backend is not open")
        return self._kvm

    def _need_vcpu(self) -> VcpuFd:
        if self._vcpu is None:
            raise KvmError("internal: KVM backend is not open")
        return self._vcpu


def _address(ram: mmap.mmap) -> int:
    """Host address of an mmap. The export is released at once: an
    anonymous mapping never moves, and a live export would stop the owner
    from closing it."""
    from tender._vcpu import ffi

    buf = ffi.from_buffer(ram)
    try:
        return int(ffi.cast("uintptr_t", buf))
    finally:
        ffi.release(buf)
