"""The bhyve Backend (tender.backend.Backend) over a Host."""

from __future__ import annotations

import ctypes
import errno
import mmap

from tender.backend import Exit, Interrupted, KickMode, Retry, StatsView
from tender.bhyve import boot, exits, ioc, lifecycle
from tender.bhyve import structs as s
from tender.bhyve.debug import BhyveDebugView, BhyveStatsView
from tender.bhyve.host import Host
from tender.debugview import DebugView
from tender.layout import CpuPlan


class BhyveBackend:
    name = "bhyve"
    # vmm maps its own memory object into the guest: host mprotect does not
    # reach the guest, so W^X is not enforced for the guest on FreeBSD.
    host_protection_effective = False
    # No ioeventfd: the kick is a real exit and the loop writes to a pipe.
    kick_mode = KickMode.EXIT

    def __init__(self, host: Host) -> None:
        self._host = host
        self._vm: lifecycle.Vm | None = None
        self._mem: mmap.mmap | None = None
        self._abi = ioc.abi_for(boot.osreldate(host))
        # Kept alive for the whole loop: the kernel copies the exit out to it.
        self._exit_buf = ctypes.create_string_buffer(s.VM_EXIT_BUFFER)
        self._run_arg = bytearray()
        self.handled: frozenset[int] = frozenset()

    @property
    def abi(self) -> ioc.Abi:
        return self._abi

    def _fd(self) -> int:
        if self._vm is None:
            raise lifecycle.BhyveError("VM is not open")
        return self._vm.fd

    def open(self, alloc: int) -> mmap.mmap:
        self._vm = lifecycle.create(self._host, lifecycle.vm_name(self._host.getpid()))
        try:
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
        try:
            self._host.ioctl(self._fd(), self._abi.vm_run, self._run_arg)
        except OSError as exc:
            if exc.errno == errno.EINTR:
                return Retry()
            raise lifecycle.BhyveError(f"VM_RUN: {exc.strerror}") from None
        if self._abi.vm_run == ioc.VM_RUN_14:
            record = self._exit_buf.raw
        else:
            record = bytes(self._run_arg[8:])
        return exits.decode(record, self.handled)

    # Typed as the protocols, so mypy holds the bhyve views to them.
    def debug_view(self) -> DebugView:
        """Registers for dumpcore; gdb is refused (tender/bhyve/debug.py)."""
        return BhyveDebugView(self._host, self._fd())

    def stats_view(self) -> StatsView:
        return BhyveStatsView()

    def interrupted(self) -> Interrupted:
        return Interrupted()

    def close(self) -> None:
        if self._mem is not None:
            self._mem.close()
            self._mem = None
        if self._vm is not None:
            self._vm.close()
