"""The backend's debug and stats views (tender.debugview, RunBackend.debug_view
and stats_view): the KVM half on a real vCPU, the bhyve half through the
recording FreeBSD host, and the neutral code (gdb target, dumpcore, stats)
over them."""

from __future__ import annotations

import dataclasses
import os
import socket
import struct
from pathlib import Path

import pytest
from conftest import guest
from test_bhyve import Recorder, freebsd
from test_kvm_backend import booted  # noqa: F401  (the fixture)

from tender import abi
from tender.bhyve import ioc
from tender.bhyve.consts import Reg
from tender.bhyve.debug import NO_GDB, BhyveStatsView
from tender.bhyve.vm import BhyveBackend
from tender.config import VmConfig
from tender.debug import attach_debug
from tender.debug.dumpcore import USER_REGS, Dumpcore, core_path
from tender.debug.target import DR6_BS, HwKind, Target
from tender.debugview import (
    CpuRegs,
    DebugArm,
    DebugCaps,
    DebugEvent,
    DebugEventKind,
    DebugView,
    SegRegs,
)
from tender.errors import DebugError
from tender.exits import Retry
from tender.memory import GuestMemory
from tender.native import native_view
from tender.stats import LiveRun
from tender.vm import load_guest

MEM = 4 << 20


# --- KVM: the view on a real vCPU ---------------------------------------------

def test_kvm_view_reads_and_writes_registers(booted: tuple[object, GuestMemory]) -> None:  # noqa: F811
    from tender.kvm.backend import KvmBackend

    backend, _mem = booted
    assert isinstance(backend, KvmBackend)
    view = backend.debug_view()
    raw = backend.debug_target.get_regs()
    regs = view.regs()
    assert (regs.rip, regs.rsp, regs.rflags) == (raw.rip, raw.rsp, raw.rflags)
    view.set_regs(dataclasses.replace(regs, r15=0xF00D, rax=0x1234))
    assert (view.regs().r15, view.regs().rax) == (0xF00D, 0x1234)
    assert backend.debug_target.get_regs().r15 == 0xF00D     # it reached the vCPU
    segs = view.segments()
    assert segs.cs == backend.debug_target.get_sregs().cs.selector != 0
    view.set_bases(0x5000, 0x6000)
    assert (view.segments().fs_base, view.segments().gs_base) == (0x5000, 0x6000)
    assert view.segments().cs == segs.cs            # selectors are never written
    fpu = view.fpu()
    assert len(fpu.st) == 8 and all(len(x) == 10 for x in fpu.st) and len(fpu.xmm) == 16
    xmm3 = bytes(range(16))
    view.set_fpu(dataclasses.replace(fpu, xmm=(*fpu.xmm[:3], xmm3, *fpu.xmm[4:]), fcw=0x27F))
    assert view.fpu().xmm[3] == xmm3 and view.fpu().fcw == 0x27F


def test_kvm_view_single_step_is_a_trap_event(booted: tuple[object, GuestMemory]) -> None:  # noqa: F811
    """Probed first (the host may not step: then the probe must say so and
    the event is never seen); stepped, the exit decodes to TRAP with DR6.BS."""
    from tender.kvm.backend import KvmBackend

    backend, mem = booted
    assert isinstance(backend, KvmBackend)
    view = backend.debug_view()
    caps = view.caps(mem)
    assert caps.host == "KVM" and caps.int3 in ("debug-exit", "emulation-failure", "none")
    start = view.regs()
    assert view.regs() == start            # the probe put every register back
    keep: list[object] = []
    from tender.hypercalls import Context

    ctx = Context(mem=mem, console_fd=os.open(os.devnull, os.O_WRONLY))
    nat = native_view(mem, load_guest(VmConfig(kernel=guest("hello")))[2], ctx, keep)
    backend.enter(nat, ())
    view.arm(DebugArm(step=True))
    ex = backend.run()
    while isinstance(ex, Retry):
        ex = backend.run()
    event = view.event(ex)
    if not caps.single_step:
        assert event is None or event.kind is not DebugEventKind.TRAP
        return
    assert event is not None and event.kind is DebugEventKind.TRAP, ex
    assert event.dr6 & DR6_BS
    assert view.regs().rip != start.rip
    view.arm(DebugArm())
    assert view.event(Retry()) is None
    os.close(ctx.console_fd)


def test_kvm_debug_structs_and_exit_decoding() -> None:
    from tender.kvm import ioctls as k
    from tender.kvm.debug import DEBUG_EXIT, RUN_EXIT_UNION, decode_debug_exit, guest_debug

    off = guest_debug(DebugArm())
    assert off.control == 0 and list(off.debugreg) == [0] * 8
    step = guest_debug(DebugArm(step=True))
    assert step.control == k.GUESTDBG_ENABLE | k.GUESTDBG_USE_SW_BP | k.GUESTDBG_SINGLESTEP
    hw = guest_debug(DebugArm(addrs=(0, 0x2000, 0, 0), dr7=0x4))
    assert hw.control == k.GUESTDBG_ENABLE | k.GUESTDBG_USE_SW_BP | k.GUESTDBG_USE_HW_BP
    assert hw.debugreg[1] == 0x2000 and hw.debugreg[7] == 0x4

    def page(exc: int, dr6: int) -> bytes:
        buf = bytearray(RUN_EXIT_UNION + DEBUG_EXIT.size)
        DEBUG_EXIT.pack_into(buf, RUN_EXIT_UNION, exc, 0, 0x1000, dr6, 0)
        return bytes(buf)

    assert decode_debug_exit(page(3, 0)) == DebugEvent(DebugEventKind.BREAKPOINT)
    assert decode_debug_exit(page(1, 0x4002)) == DebugEvent(DebugEventKind.TRAP, 0x4002)
    assert decode_debug_exit(page(6, 0x2)) == DebugEvent(DebugEventKind.TRAP, 0)


# --- the neutral gdb target over any view -----------------------------------

@dataclasses.dataclass
class ArmLog:
    """Just enough of a DebugView for Target's breakpoint bookkeeping."""

    armed: list[DebugArm] = dataclasses.field(default_factory=list)
    rip: int = 0
    no_gdb: str | None = None

    def arm(self, arm: DebugArm) -> None:
        self.armed.append(arm)

    def regs(self) -> CpuRegs:
        return CpuRegs(*([0] * 16), rip=self.rip, rflags=2)


def test_target_programs_x86_debug_registers_through_the_view() -> None:
    log = ArmLog()
    mem = GuestMemory(MEM, MEM)
    try:
        view: DebugView = log  # type: ignore[assignment]
        t = Target(view, mem, DebugCaps("test", True, True, True, "debug-exit"))
        assert t.insert_hw(HwKind.EXEC, 0x1234, 1)
        assert t.insert_hw(HwKind.WRITE, 0x2000, 4)
        t.arm(step=False)
        # DR0: exec, len 1 (L0); DR1: write (RW=01), len 4 (LEN=11), L1.
        assert log.armed[-1] == DebugArm(False, False, (0x1234, 0x2000, 0, 0),
                                         0x1 | 0x4 | (0b01 << 20) | (0b11 << 22))
        t.clear_all()
        t.arm(step=True)
        assert log.armed[-1] == DebugArm(step=True) and not log.armed[-1].off
        assert DebugArm().off
        stop = t.debug_stop(DebugEvent(DebugEventKind.TRAP, 0x2))
        assert stop.reason == "" and stop.signal == 5     # no point set any more
        t.insert_sw(0x300000)
        log.rip = 0x300000
        assert t.int3_stop() is not None and t.int3_stop().reason == "swbreak"  # type: ignore[union-attr]
        log.rip = 0x300001
        assert t.int3_stop() is None
    finally:
        mem.close()


# --- bhyve: what of the view it supports ------------------------------------

class RegisterHost(Recorder):
    """The recording host, answering VM_GET_REGISTER with regnum * 0x101."""

    def ioctl(self, fd: int, request: int, arg: bytearray) -> None:
        super().ioctl(fd, request, arg)
        if request == ioc.VM_GET_REGISTER:
            _cpu, regnum = struct.unpack_from("<ii", arg, 0)
            struct.pack_into("<Q", arg, 8, regnum * 0x101)


def _bhyve() -> tuple[RegisterHost, BhyveBackend, GuestMemory]:
    host = RegisterHost(sysctls=freebsd().sysctls)
    backend = BhyveBackend(host)
    ram = backend.open(MEM)
    return host, backend, GuestMemory(MEM, MEM, ram)


def test_bhyve_view_reads_registers_with_vm_get_register() -> None:
    host, backend, mem = _bhyve()
    try:
        host.calls.clear()
        view = backend.debug_view()
        regs, segs = view.regs(), view.segments()
        assert regs.rax == Reg.RAX * 0x101 and regs.rip == Reg.RIP * 0x101
        assert regs.rsp == Reg.RSP * 0x101 and regs.rflags == Reg.RFLAGS * 0x101
        assert segs == SegRegs(*(int(r) * 0x101 for r in (
            Reg.CS, Reg.SS, Reg.DS, Reg.ES, Reg.FS, Reg.GS, Reg.FS_BASE, Reg.GS_BASE)))
        asked = [struct.unpack_from("<ii", arg)[1] for req, arg in host.ioctls()]
        assert {req for req, _ in host.ioctls()} == {ioc.VM_GET_REGISTER}
        assert len(asked) == 18 + 8 and Reg.R15 in asked and Reg.GS_BASE in asked
        # Nothing else is offered: each refusal is the same one line.
        for call in (lambda: view.fpu(), lambda: view.arm(DebugArm()),
                     lambda: view.set_regs(regs), lambda: view.kick_on(12),
                     lambda: view.caps(mem)):
            with pytest.raises(DebugError) as e:
                call()
            assert e.value.message == NO_GDB and "\n" not in NO_GDB
        assert view.no_gdb == NO_GDB and view.event(Retry()) is None
    finally:
        mem.close()
        backend.close()


def test_bhyve_refuses_gdb_in_one_line_and_never_listens() -> None:
    _host, backend, mem = _bhyve()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    try:
        cfg = VmConfig(kernel=guest("hello"), gdb_port=port)
        with pytest.raises(DebugError) as e:
            attach_debug(cfg, backend.debug_view, mem, lambda _m: None)
        assert e.value.message == NO_GDB
        with socket.socket() as s, pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", port))          # the stub never listened
    finally:
        mem.close()
        backend.close()


def test_bhyve_dumpcore_writes_the_registers_it_read(tmp_path: Path) -> None:
    _host, backend, mem = _bhyve()
    said: list[str] = []
    try:
        cfg = VmConfig(kernel=guest("hello"), dumpcore=str(tmp_path))
        session = attach_debug(cfg, backend.debug_view, mem, said.append)
        assert isinstance(session.dumpcore, Dumpcore) and session.gdb is None
        mem.view[0x100000:0x100004] = b"core"
        session.dumpcore.on_halt(abi.SOLO5_EXIT_ABORT, None)
        core = Path(core_path(str(tmp_path), os.getpid())).read_bytes()
    finally:
        mem.close()
        backend.close()
    assert any("dumped" in m for m in said), said
    regs = struct.unpack_from(f"<{len(USER_REGS)}Q", core, 176 + 12 + 8 + 112)
    by_name = dict(zip(USER_REGS, regs, strict=True))
    assert by_name["rip"] == Reg.RIP * 0x101 and by_name["r15"] == Reg.R15 * 0x101
    assert by_name["cs"] == Reg.CS * 0x101 and by_name["fs_base"] == Reg.FS_BASE * 0x101
    assert by_name["eflags"] == Reg.RFLAGS * 0x101


def test_trace_alone_needs_no_debug_view(tmp_path: Path) -> None:
    def no_view() -> DebugView:
        raise AssertionError("the trace asked for the debug view")

    mem = GuestMemory(MEM, MEM)
    try:
        cfg = VmConfig(kernel=guest("hello"), trace=str(tmp_path / "t.jsonl"))
        session = attach_debug(cfg, no_view, mem, lambda _m: None)
        assert session.trace is not None and session.gdb is None and session.dumpcore is None
        session.close()
    finally:
        mem.close()


def test_bhyve_stats_view_says_it_has_no_host_counters() -> None:
    view = BhyveStatsView()
    live = LiveRun("hello.hvt", MEM, {}, host=view)
    snap = live.snapshot()
    assert snap.kvm.unavailable == view.unavailable and snap.kvm.vm == {} == snap.kvm.vcpu
    live.finish()
    assert live.snapshot().kvm.unavailable == view.unavailable
    assert view.exit_name(0, 40) == "inout" and view.exit_name(21, 40) == "debug"
    assert view.exit_name(40, 40) == "other" and view.exit_name(39, 40) == "exitcode_39"

