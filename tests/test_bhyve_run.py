"""Whole runs on the bhyve backend: SIMULATED, UNTESTED ON REAL FREEBSD.

FreeBSD cannot run here. Each test runs a real guest ELF from guests/build
through the real run assembly (Tender(cfg).run(), or the CLI entry in a
child process) with `sys.platform` set to FreeBSD's and the FreeBSD calls
answered by tests/bhyve_fake.py: it answers the vmm ioctls as BHYVE_SPEC.md
says the kernel does, records each one, and replays a scripted exit
sequence in place of a vCPU (PUTS from the guest's real string GPA, ring
kicks, fatal exits, a failing host). What this shows: the core drives
BhyveBackend.run() to the same output, messages and exit codes as on KVM,
the VM is set up, run and destroyed in the spec's order on every exit
path, and a kick becomes one byte written to the ring's pipe. What it
cannot show: that a FreeBSD kernel accepts any of it (README, "FreeBSD /
bhyve backend")."""

from __future__ import annotations

import errno
import json
import os
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bhyve_fake import (
    FakeVmm,
    Step,
    bogus,
    fake_host,
    halt,
    hello,
    hypercall,
    puts,
    raw,
    ring_write,
    signal_once_running,
)
from conftest import ROOT, guest
from test_bhyve import exit_record, inout_record

import tender.bhyve.vm as bhyve_vm
from tender import abi, sandbox
from tender.bhyve import ioc
from tender.bhyve.debug import NO_GDB
from tender.cli import exit_code_for
from tender.config import BlockSpec, HandlerMode, NetSpec, VmConfig
from tender.devices import kickpipe, kqwait
from tender.devices.pipe import FramePipe
from tender.errors import GuestFault, HostError, TenderError
from tender.host import open_backend
from tender.session import Outcome
from tender.vm import Tender

LIFECYCLES = ("main", "15.0", "14")
MEM = 64 << 20

# BHYVE_SPEC 6 steps 12-20: 26 ioctls, by name.
BOOT = (["VM_SET_REGISTER"] * 4
        + ["VM_SET_SEGMENT_DESCRIPTOR", "VM_SET_REGISTER"] * 6
        + ["VM_SET_SEGMENT_DESCRIPTOR"]                       # GDTR: no selector
        + ["VM_SET_SEGMENT_DESCRIPTOR", "VM_SET_REGISTER"] * 2  # TR, LDTR
        + ["VM_SET_REGISTER"] * 4 + ["VM_ACTIVATE_CPU"])
CREATE = {
    "main": ["open /dev/vmmctl", "VMMCTL_VM_CREATE"],
    "15.0": ["open /dev/vmmctl", "VMMCTL_VM_CREATE", "VMMCTL_VM_CREATE"],   # EINVAL, flags 0
    "14": ["open /dev/vmmctl", "sysctl hw.vmm.create"],                    # ENOENT: sysctls
}
# Close the VM fd first, then destroy (BHYVE_SPEC 2.5 step 4).
DESTROY = {
    "main": ["close vm", "close vmmctl"],         # closing vmmctl destroys it
    "15.0": ["close vm", "VMMCTL_VM_DESTROY", "close vmmctl"],
    "14": ["close vm", "sysctl hw.vmm.destroy"],
}


def expected(lifecycle: str, runs: int) -> list[str]:
    """The whole call list of a run that reached `runs` VM_RUNs."""
    return [*CREATE[lifecycle], "open /dev/vmm/solo5-4242", "VM_SET_CAPABILITY",
            "VM_ALLOC_MEMSEG", "VM_MMAP_MEMSEG", "mmap", *BOOT,
            *["VM_RUN"] * runs, *DESTROY[lifecycle]]


@pytest.fixture
def freebsd(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[FakeVmm]]:
    """This process looks like FreeBSD to tender.host and tender.sandbox;
    the backend's host calls go to the fake the test appends."""
    hosts: list[FakeVmm] = []
    monkeypatch.setattr(sys, "platform", "freebsd14")
    monkeypatch.setattr(bhyve_vm, "FreeBsdHost", lambda: hosts[-1])
    yield hosts


def run_on(hosts: list[FakeVmm], host: FakeVmm,
           cfg: VmConfig) -> tuple[Outcome | BaseException, bytes]:
    """Tender(cfg).run() over `host`: the outcome (or what it raised) and
    what the guest wrote to its console."""
    hosts.append(host)
    r, w = os.pipe()
    try:
        try:
            got: Outcome | BaseException = Tender(cfg, console_fd=w).run()
        except BaseException as exc:    # the test looks at it
            got = exc
    finally:
        os.close(w)
        with os.fdopen(r, "rb") as f:
            console = f.read()
    return got, console


def hello_cfg(handlers: HandlerMode = HandlerMode.PYTHON) -> VmConfig:
    return VmConfig(kernel=guest("hello"), args=(b"Hello_Solo5",), mem=MEM, handlers=handlers)


def registers(host: FakeVmm) -> dict[int, int]:
    """regnum -> value of every VM_SET_REGISTER, in order (last one wins)."""
    out: dict[int, int] = {}
    for request, arg in host.ioctls():
        if request == 0x80107614:
            _cpu, reg, value = struct.unpack("<iiQ", arg)
            out[reg] = value
    return out


# --- selection ---------------------------------------------------------------

def test_host_selects_bhyve_on_freebsd_only(freebsd: list[FakeVmm]) -> None:
    freebsd.append(fake_host())
    cfg = hello_cfg()
    warned: list[str] = []
    backend = open_backend(cfg, warned.append)      # sys.platform is freebsd14 here
    assert type(backend).__name__ == "BhyveBackend" and backend.kick_mode.value == "exit"
    assert type(open_backend(cfg, warned.append, "linux")).__name__ == "KvmBackend"
    with pytest.raises(HostError, match=r"^no backend for this host \(openbsd7\)$"):
        open_backend(cfg, warned.append, "openbsd7")
    assert warned == [] and freebsd[-1].calls == [("sysctl_read", "kern.osreldate", 4)]


def test_gdb_is_refused_in_one_line_and_the_vm_still_goes(freebsd: list[FakeVmm]) -> None:
    host = fake_host("15.0")
    got, _ = run_on(freebsd, host, VmConfig(kernel=guest("hello"), mem=MEM, gdb_port=0))
    assert isinstance(got, TenderError) and got.message == NO_GDB
    assert host.operations() == expected("15.0", runs=0)


def test_dumpcore_writes_a_core_from_vm_get_register(freebsd: list[FakeVmm],
                                                    tmp_path: Path) -> None:
    """A guest abort (status 255) with --dumpcore: the registers come from
    one VM_GET_REGISTER each, the memory from the vmm mapping."""
    host = fake_host("main", [puts(b"SUCCESS\n"), halt(255)])
    cfg = VmConfig(kernel=guest("hello"), mem=MEM, dumpcore=str(tmp_path))
    got, _ = run_on(freebsd, host, cfg)
    assert isinstance(got, Outcome) and got.exit_code == 255, got
    (core,) = tmp_path.iterdir()
    assert core.name == f"core.solo5-hvt.{os.getpid()}"
    data = core.read_bytes()
    assert data[:4] == b"\x7fELF" and struct.unpack_from("<H", data, 16) == (4,)  # ET_CORE
    gets = [n for n in host.operations() if n == "VM_GET_REGISTER"]
    assert gets and host.operations()[-2:] == DESTROY["main"]


def test_freebsd_has_no_sandbox_yet_and_says_so() -> None:
    assert sandbox.enter(platform="freebsd15") == sandbox.NO_CAPSICUM
    with pytest.raises(HostError, match=r"^no sandbox for this host \(netbsd\)$"):
        sandbox.enter(platform="netbsd")


# --- whole runs ----------------------------------------------------------------

@pytest.mark.parametrize("lifecycle", LIFECYCLES)
@pytest.mark.parametrize("handlers", [HandlerMode.PYTHON, HandlerMode.NATIVE])
def test_hello_runs_to_its_halt_status_and_the_vm_is_destroyed(
        freebsd: list[FakeVmm], pipes: Pipes, lifecycle: str, handlers: HandlerMode) -> None:
    """The guest's real strings, printed in order, status 0; native mode
    serves PUTS through the C twin between exits (the C loop is KVM's), so
    no Python os.write carries them."""
    host = fake_host(lifecycle, hello())
    out, console = run_on(freebsd, host, hello_cfg(handlers))
    assert isinstance(out, Outcome), out
    assert (out.status, out.exit_code) == (0, 0)
    assert dict(out.hypercalls) == {"puts": 2, "halt": 1}
    assert console == b"\n**** Hello, World ****\n\nSUCCESS\n"
    by_python = [d for _fd, d in pipes[1] if d in (b"SUCCESS\n", b"\n**** Hello, World ****\n\n")]
    assert len(by_python) == (2 if handlers is HandlerMode.PYTHON else 0)
    assert host.operations() == expected(lifecycle, runs=4)
    with open(guest("hello"), "rb") as f:
        (entry,) = struct.unpack_from("<Q", f.read(64), 24)
    regs = registers(host)
    assert (regs[20], regs[19], regs[5]) == (entry, MEM - 8, abi.BOOT_INFO_BASE)  # RIP RSP RDI
    alloc = [a for r, a in host.ioctls() if r == 0x8020760E]
    assert [struct.unpack_from("<Q", a, 8)[0] for a in alloc] == [MEM]


def test_a_wrong_command_line_is_the_guests_failure_not_the_tenders(
        freebsd: list[FakeVmm]) -> None:
    host = fake_host("main", hello())
    out, console = run_on(freebsd, host, VmConfig(kernel=guest("hello"), mem=MEM))
    assert isinstance(out, Outcome) and out.exit_code == 1 and console == b""
    assert host.operations() == expected("main", runs=1)


VMX = exit_record(1, 3, 0x100ABC, struct.pack("<iIQii", -1, 48, 0x181, 2, 7))
FATAL: dict[str, tuple[list[Step], type[BaseException], str]] = {
    "bad port": ([raw(inout_record(0x509))], GuestFault,
                 "Invalid guest port access: port=0x509"),
    "in from the kick port": ([raw(inout_record(0x600, 0x000C))], GuestFault,
                              "Invalid guest port access: port=0x600"),
    "hypercall 0": ([raw(inout_record(0x500))], GuestFault, "Invalid guest hypercall: num=0"),
    "no block device": ([bogus(), raw(inout_record(0x505, eax=0x1000))], GuestFault,
                        "Invalid guest hypercall: num=5"),
    "puts outside RAM": ([raw(inout_record(0x502, eax=0xFFFF0000))], GuestFault,
                         "Invalid guest access: gpa=0xffff0000, sz=16"),
    "suspended": ([raw(exit_record(14, 0, 0x100ABC, struct.pack("<i", 3)))], TenderError,
                  "unhandled exit: exitcode=14, rip=0x100abc"),
    "vmx": ([raw(VMX)], TenderError,
            "unhandled VMX exit: rip=0x0000000000100abc, inst_length=3, status=-1, "
            "exit_reason=48, qualification=0x0000000000000181, inst_type=2, inst_error=7"),
    "VM_RUN fails": ([puts(b"SUCCESS\n"), raw(errno.EINVAL)], TenderError,
                     "VM_RUN: Invalid argument"),
    "host raises": ([raw(RuntimeError("the fake host broke"))], RuntimeError,
                    "the fake host broke"),
}


@pytest.mark.parametrize("lifecycle", LIFECYCLES)
@pytest.mark.parametrize("case", sorted(FATAL))
def test_fatal_exits_end_the_run_as_on_kvm_and_still_destroy_the_vm(
        freebsd: list[FakeVmm], lifecycle: str, case: str) -> None:
    script, cls, message = FATAL[case]
    host = fake_host(lifecycle, script)
    runs = len(script)
    got, console = run_on(freebsd, host, hello_cfg())
    assert type(got) is cls or (cls is TenderError and isinstance(got, TenderError)), got
    assert str(got) == message
    if isinstance(got, TenderError):
        assert exit_code_for(got) == 1
    assert console == (b"SUCCESS\n" if case == "VM_RUN fails" else b"")
    assert host.operations() == expected(lifecycle, runs)


SETUP_FAILS = {
    "memseg": (ioc.VM_ALLOC_MEMSEG_14, errno.ENOMEM, "VM_ALLOC_MEMSEG: Cannot allocate memory",
               ["VM_SET_CAPABILITY", "VM_ALLOC_MEMSEG"]),
    "activate": (ioc.VM_ACTIVATE_CPU, errno.EBUSY, "VM_ACTIVATE_CPU: Device or resource busy",
                 ["VM_SET_CAPABILITY", "VM_ALLOC_MEMSEG", "VM_MMAP_MEMSEG", "mmap", *BOOT]),
}


@pytest.mark.parametrize("lifecycle", LIFECYCLES)
@pytest.mark.parametrize("step", sorted(SETUP_FAILS))
def test_a_failed_set_up_step_is_one_line_and_destroys_the_vm(
        freebsd: list[FakeVmm], lifecycle: str, step: str) -> None:
    request, err, message, done = SETUP_FAILS[step]
    host = fake_host(lifecycle)
    host.fail[request] = [err]
    got, _ = run_on(freebsd, host, hello_cfg())
    assert isinstance(got, TenderError) and got.message == message
    assert exit_code_for(got) == 1
    create = [*CREATE[lifecycle], "open /dev/vmm/solo5-4242"]
    assert host.operations() == [*create, *done, *DESTROY[lifecycle]]


@pytest.mark.parametrize("handlers", [HandlerMode.PYTHON, HandlerMode.NATIVE])
def test_retry_exits_and_eintr_run_again_and_are_counted(
        freebsd: list[FakeVmm], handlers: HandlerMode) -> None:
    host = fake_host("main", [bogus(), raw(errno.EINTR), puts(b"SUCCESS\n"), bogus(),
                              halt(7)])
    freebsd.append(host)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        tender = Tender(hello_cfg(handlers), console_fd=null)
        out = tender.run()
    finally:
        os.close(null)
    assert out.exit_code == 7
    assert host.operations() == expected("main", runs=5)
    # Named by vm_exitcode (tender/bhyve/debug.py's stats view), as vl_run
    # counts KVM's, C twins or not.
    stats = tender.stats()
    assert dict(stats.exits) == {"inout": 2, "bogus": 2, "interrupted": 1}
    assert dict(stats.hypercalls) == {"puts": 1, "halt": 1}
    assert stats.kvm.unavailable == "the bhyve backend does not read vmm statistics"


def test_stop_from_another_thread_interrupts_and_destroys(freebsd: list[FakeVmm]) -> None:
    """Tender.stop() signals the vCPU thread; the handler the backend
    installed keeps it from ending the process."""
    import threading

    box: list[Tender] = []

    def spin(_v: FakeVmm) -> bytes:
        if len(box) == 1:
            threading.Thread(target=box[0].stop).start()
            box.append(box[0])
        time.sleep(0.005)
        return exit_record(2, 0, 0x100ABC)

    host = fake_host("15.0", [spin] * 2000)
    freebsd.append(host)
    null = os.open(os.devnull, os.O_WRONLY)
    tender = Tender(hello_cfg(), console_fd=null)
    box.append(tender)
    try:
        with pytest.raises(TenderError, match=r"^Guest stopped on request$"):
            tender.run()
    finally:
        os.close(null)
    ops = host.operations()
    assert ops[-3:] == DESTROY["15.0"] and 0 < ops.count("VM_RUN") < 2000


@pytest.mark.parametrize("handlers", [HandlerMode.PYTHON, HandlerMode.NATIVE])
def test_block_write_then_read_reach_the_image(freebsd: list[FakeVmm], tmp_path: Path,
                                               handlers: HandlerMode) -> None:
    """guests/blk's device over a real image file: a sector written from
    guest memory lands in the file, and reads back into another buffer."""
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(8192))
    sector = bytes(range(256)) * 2

    def block(nr: int, buf_at: int, offset: int) -> Step:
        def step(v: FakeVmm) -> bytes:
            arg, buf = v.scratch(0x500), v.scratch(buf_at)
            if nr == abi.Hypercall.BLOCK_WRITE:
                v.guest_mem()[buf:buf + 512] = sector
            v.guest_mem()[arg:arg + abi.BLOCK.size] = abi.BLOCK.pack(1, offset, buf, 512, -1)
            return inout_record(0x500 + nr, eax=arg)
        return step

    def read_back(v: FakeVmm) -> bytes:
        arg, buf = v.scratch(0x500), v.scratch(0x2000)
        assert abi.BLOCK.unpack(v.guest_mem()[arg:arg + abi.BLOCK.size])[4] == 0
        return halt(0 if v.guest_mem()[buf:buf + 512] == sector else 1)(v)

    host = fake_host("main", [block(abi.Hypercall.BLOCK_WRITE, 0x1000, 4096),
                              block(abi.Hypercall.BLOCK_READ, 0x2000, 4096), read_back])
    cfg = VmConfig(kernel=guest("blk"), mem=MEM, handlers=handlers,
                   blocks=(BlockSpec("storage", path=str(image)),))
    out, _ = run_on(freebsd, host, cfg)
    assert isinstance(out, Outcome) and out.exit_code == 0, out
    assert dict(out.hypercalls) == {"block_write": 1, "block_read": 1, "halt": 1}
    assert image.read_bytes() == bytes(4096) + sector + bytes(3584)
    assert host.operations() == expected("main", runs=3)


def test_trace_works_on_bhyve(freebsd: list[FakeVmm], tmp_path: Path) -> None:
    """--trace needs no debug view."""
    trace = tmp_path / "trace.jsonl"
    host = fake_host("main", hello())
    cfg = VmConfig(kernel=guest("hello"), args=(b"Hello_Solo5",), mem=MEM, trace=str(trace))
    out, console = run_on(freebsd, host, cfg)
    assert isinstance(out, Outcome) and out.exit_code == 0, out
    assert console.endswith(b"SUCCESS\n")
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [(r["event"], r.get("name")) for r in records] == [
        ("hypercall", "puts"), ("hypercall", "puts"), ("hypercall", "halt"), ("exit", None)]
    assert records[1]["args"]["text"] == "SUCCESS\n" and records[-1]["exit_code"] == 0


class FakeTapOps:
    """/dev/tap0 on a simulated FreeBSD: a FramePipe's guest end, MTU 9000."""

    def __init__(self, pipe: FramePipe) -> None:
        self.pipe = pipe
        self.calls: list[tuple[object, ...]] = []

    def open(self, path: str, flags: int) -> int:
        self.calls.append(("open", path, flags))
        return os.dup(self.pipe.guest_fileno())

    def close(self, fd: int) -> None:
        os.close(fd)

    def ioctl(self, fd: int, request: int, arg: bytearray) -> None:
        self.calls.append(("ioctl", request, bytes(arg[:16])))
        arg[16:20] = struct.pack("<i", 9000)


def test_a_tap_by_name_is_dev_iface_with_freebsds_mtu_request(
        freebsd: list[FakeVmm], monkeypatch: pytest.MonkeyPatch) -> None:
    from tender.devices import bsdtap

    frame_pipe = FramePipe()
    ops = FakeTapOps(frame_pipe)
    monkeypatch.setattr(bsdtap, "OsTapOps", lambda: ops)
    monkeypatch.setattr(bsdtap, "interface_names", lambda: {"lo0", "tap0"})

    def mtu_in_manifest(v: FakeVmm) -> bytes:
        entry = v.boot_info()[4] + abi.MFT_HEADER.size + abi.MFT_ENTRY.size
        assert struct.unpack_from("<H", v.guest_mem(), entry + 78) == (9000,)
        return halt(0)(v)

    host = fake_host("main", [mtu_in_manifest])
    cfg = VmConfig(kernel=guest("net"), mem=MEM, handlers=HandlerMode.PYTHON,
                   nets=(NetSpec("service0", iface="tap0"),))
    try:
        out, _ = run_on(freebsd, host, cfg)
        tap9 = VmConfig(kernel=guest("net"), nets=(NetSpec("service0", iface="tap9"),))
        missing, _ = run_on(freebsd, fake_host("main"), tap9)
    finally:
        frame_pipe.close()
    assert isinstance(out, Outcome) and out.exit_code == 0, out
    assert ops.calls == [("open", "/dev/tap0", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC),
                         ("ioctl", bsdtap.SIOCGIFMTU, b"tap0".ljust(16, b"\0"))]
    assert bsdtap.SIOCGIFMTU == ioc.SIOCGIFMTU
    # Checked before anything is opened: /dev/tap9 would create the interface.
    assert isinstance(missing, TenderError)
    assert missing.message == "Could not attach interface: tap9: No such file or directory"
    assert freebsd[-1].operations() == []       # no VM was made


# --- the net ring: kicks are exits ---------------------------------------------

FRAME = bytes.fromhex("ffffffffffff020000000001") + b"\x08\x06" + bytes(range(46))


def net_cfg(pipe: FramePipe, handlers: HandlerMode = HandlerMode.NATIVE) -> VmConfig:
    return VmConfig(kernel=guest("net"), mem=MEM, handlers=handlers,
                    nets=(NetSpec("service0", pipe=pipe),))


Pipes = tuple[list[tuple[kickpipe.PipeKick, int]], list[tuple[int, bytes]]]


@pytest.fixture
def pipes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipes]:
    """Every kick pipe made (with its write fd), and every os.write (fd,
    bytes) while the test runs."""
    made: list[tuple[kickpipe.PipeKick, int]] = []
    writes: list[tuple[int, bytes]] = []
    init, write = kickpipe.PipeKick.__init__, os.write

    def record_init(self: kickpipe.PipeKick) -> None:
        init(self)
        made.append((self, self.write_fd))

    def record_write(fd: int, data: bytes) -> int:  # type: ignore[override]
        writes.append((fd, bytes(data)))
        return write(fd, data)

    monkeypatch.setattr(kickpipe.PipeKick, "__init__", record_init)
    monkeypatch.setattr(os, "write", record_write)
    yield made, writes


def test_a_kick_is_one_byte_on_the_pipe_the_ring_thread_sleeps_on(
        freebsd: list[FakeVmm], monkeypatch: pytest.MonkeyPatch,
        pipes: Pipes) -> None:
    """The fake waits until the I/O thread asked for a kick and blocked, so
    the frame reaches the FramePipe only if the pipe write woke it; the halt
    hook's stop then wakes it through the pipe's write end and joins it
    (before vl_ring_set_wake, that join never returned)."""
    monkeypatch.setenv("PYTENDER_RING_MODE", "thread")
    made, writes = pipes
    frame_pipe = FramePipe()

    def sent(frame: bytes) -> Step:
        """The frame is out before the guest halts (no final drain sent it)."""
        def step(_v: FakeVmm) -> bytes:
            assert frame_pipe.recv(10) == frame
            return exit_record(2, 0, 0x100ABC)
        return step

    host = fake_host("main", [ring_write(FRAME), sent(FRAME), ring_write(FRAME[::-1]),
                              sent(FRAME[::-1]), halt(0)])
    try:
        out, _ = run_on(freebsd, host, net_cfg(frame_pipe))
        assert isinstance(out, Outcome) and out.exit_code == 0, out
    finally:
        frame_pipe.close()
    ((kick, write_fd),) = made
    assert [w for w in writes if w[0] == write_fd] == [(write_fd, b"\x01")] * 2
    assert kick.read_fd == kick.write_fd == -1      # closed with the ring
    assert host.operations() == expected("main", runs=5)


def test_inline_ring_serves_kicks_on_the_vcpu_thread_without_a_pipe(
        freebsd: list[FakeVmm], monkeypatch: pytest.MonkeyPatch,
        pipes: Pipes) -> None:
    monkeypatch.setenv("PYTENDER_RING_MODE", "inline")
    made, _ = pipes
    frame_pipe = FramePipe()
    host = fake_host("14", [ring_write(FRAME, wait_asleep=False), halt(0)])
    try:
        out, _ = run_on(freebsd, host, net_cfg(frame_pipe))
        assert isinstance(out, Outcome) and out.exit_code == 0, out
        assert frame_pipe.recv(5) == FRAME
    finally:
        frame_pipe.close()
    assert made == []
    assert host.operations() == expected("14", runs=2)


def test_a_ring_failure_ends_the_run_in_one_line(
        freebsd: list[FakeVmm], monkeypatch: pytest.MonkeyPatch) -> None:
    """The I/O thread dies on a bad entry and signals the vCPU thread; the
    next run() reports its message, as vl_run does on KVM."""
    monkeypatch.setenv("PYTENDER_RING_MODE", "thread")

    def settle(_v: FakeVmm) -> bytes:
        time.sleep(0.01)
        return exit_record(2, 0, 0x100ABC)

    frame_pipe = FramePipe()
    host = fake_host("15.0", [ring_write(FRAME, gpa=0xFFFF0000), *[settle] * 500])
    try:
        got, _ = run_on(freebsd, host, net_cfg(frame_pipe))
    finally:
        frame_pipe.close()
    assert isinstance(got, GuestFault), got
    assert got.message == f"Invalid guest access: gpa=0xffff0000, sz={len(FRAME)}"
    assert host.operations()[-3:] == DESTROY["15.0"]


def test_python_handlers_offer_no_ring_and_a_stray_kick_is_ignored(
        freebsd: list[FakeVmm]) -> None:
    def no_ring(v: FakeVmm) -> bytes:
        info = v.boot_info()
        assert (info[5], info[7]) == (0, 0), info
        return inout_record(abi.RING_KICK_PORT)     # nothing to wake: resume

    frame_pipe = FramePipe()
    host = fake_host("main", [no_ring, halt(0)])
    try:
        out, _ = run_on(freebsd, host, net_cfg(frame_pipe, HandlerMode.PYTHON))
    finally:
        frame_pipe.close()
    assert isinstance(out, Outcome) and out.exit_code == 0, out
    assert host.operations() == expected("main", runs=2)


# --- the CLI entry, in its own process ------------------------------------------

CLI = {
    "hello": (0, b"\n**** Hello, World ****\n\nSUCCESS\n", []),
    "bad_port": (1, b"", ["pytender: Invalid guest port access: port=0x509"]),
    "suspended": (1, b"", ["pytender: unhandled exit: exitcode=14, rip=0x100abc"]),
    "run_fails": (1, b"", ["pytender: VM_RUN: Invalid argument"]),
    "host_raises": (1, b"", ["pytender: internal error: RuntimeError: the fake host broke"]),
}


def cli_child(scenario: str, ops: Path) -> list[str]:
    return [sys.executable, str(ROOT / "tests" / "bhyve_fake.py"), "main", scenario, str(ops),
            "--mem=64", guest("hello"), "Hello_Solo5"]


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTENDER_NO_SECCOMP"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests"), str(ROOT)])
    return env


@pytest.mark.parametrize("scenario", sorted(CLI))
def test_cli_entry_on_simulated_freebsd(tmp_path: Path, scenario: str) -> None:
    status, stdout, lines = CLI[scenario]
    ops = tmp_path / "ops.json"
    r = subprocess.run(cli_child(scenario, ops), capture_output=True, timeout=120,
                       env=cli_env(), cwd=ROOT)
    assert r.returncode == status, r.stderr
    assert r.stdout == stdout
    assert r.stderr.decode().splitlines() == [f"pytender: {sandbox.NO_CAPSICUM}", *lines]
    runs = {"hello": 4, "run_fails": 2}.get(scenario, 1)
    assert json.loads(ops.read_text()) == expected("main", runs)


# --- POLL on kqueue, as on FreeBSD ---------------------------------------------

class PollKqueue:
    """A kqueue stand-in over select.poll (Linux has no kqueue): EVFILT_READ
    registrations with udata, events for the readable ones."""

    def __init__(self) -> None:
        import select

        self._poll = select.poll()
        self._udata: dict[int, int] = {}
        self.calls: list[tuple[int, tuple[int, int] | None]] = []

    def control(self, changes: list[kqwait.Change] | None, max_events: int,
                timeout: tuple[int, int] | None) -> list[kqwait.Event]:
        import select

        for c in changes or ():
            assert (c.filter, c.flags) == (kqwait.EVFILT_READ, kqwait.EV_ADD)
            self._poll.register(c.ident, select.POLLIN)
            self._udata[c.ident] = c.udata
        if changes:
            return []
        self.calls.append((max_events, timeout))
        ms = None if timeout is None else timeout[0] * 1000 + timeout[1] // 1_000_000
        got = self._poll.poll(ms)
        return [kqwait.Event(fd, self._udata[fd]) for fd, _ in got][:max_events]

    def close(self) -> None:
        self.closed = True


def test_poll_and_net_read_over_kqueue_where_there_is_no_epoll(
        freebsd: list[FakeVmm], monkeypatch: pytest.MonkeyPatch) -> None:
    """Python handlers on a host without epoll: POLL waits on the kqueue
    wait set (BHYVE_SPEC 8.3), NET_READ then takes the frame."""
    import select

    kqs: list[PollKqueue] = []
    monkeypatch.delattr(select, "epoll")
    monkeypatch.setattr(kqwait, "SelectKqueue", lambda: kqs.append(PollKqueue()) or kqs[-1])
    frame_pipe = FramePipe()

    def poll(timeout_ns: int) -> Step:
        def step(v: FakeVmm) -> bytes:
            arg = v.scratch(0x300)
            v.guest_mem()[arg:arg + abi.POLL.size] = abi.POLL.pack(timeout_ns, 0, -1)
            return inout_record(0x500 + abi.Hypercall.POLL, eax=arg)
        return step

    def polled(ready: int, ret: int) -> Step:
        def step(v: FakeVmm) -> bytes:
            arg = v.scratch(0x300)
            got = abi.POLL.unpack(v.guest_mem()[arg:arg + abi.POLL.size])
            assert got[1:] == (ready, ret), got
            if ret:
                return bogus()(v)
            frame_pipe.send(FRAME)      # the next POLL finds it
            return bogus()(v)
        return step

    def net_read(v: FakeVmm) -> bytes:
        arg, buf = v.scratch(0x400), v.scratch(0x1000)
        v.guest_mem()[arg:arg + abi.NET.size] = abi.NET.pack(1, buf, 1514, -1)
        return inout_record(0x500 + abi.Hypercall.NET_READ, eax=arg)

    def got_frame(v: FakeVmm) -> bytes:
        arg, buf = v.scratch(0x400), v.scratch(0x1000)
        _h, _d, n, ret = abi.NET.unpack(v.guest_mem()[arg:arg + abi.NET.size])
        assert (ret, bytes(v.guest_mem()[buf:buf + n])) == (0, FRAME)
        return halt(0)(v)

    host = fake_host("main", [poll(0), polled(0, 0), poll(1_500_000_001), polled(0b10, 1),
                              net_read, got_frame])
    try:
        out, _ = run_on(freebsd, host, net_cfg(frame_pipe, HandlerMode.PYTHON))
    finally:
        frame_pipe.close()
    assert isinstance(out, Outcome) and out.exit_code == 0, out
    (kq,) = kqs
    assert kq.calls == [(1, (0, 0)), (1, (1, 500_000_001))] and kq.closed


def test_ring_mode_counts_cpus_where_there_is_no_affinity_call(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tender.devices import ring

    monkeypatch.delenv("PYTENDER_RING_MODE", raising=False)
    monkeypatch.delattr(os, "sched_getaffinity")
    for cpus, mode in ((2, "inline"), (8, "thread"), (None, "inline")):
        monkeypatch.setattr(os, "cpu_count", lambda n=cpus: n)
        assert ring.ring_mode() == mode


# --- the C extension off Linux -------------------------------------------------

EXTENSION_SOURCES = ("vcpu_loop.c", "ring.c", "sandbox.c", "hypercalls.c")


def test_extension_sources_keep_linux_headers_behind___linux__() -> None:
    """On FreeBSD the extension must build without KVM and seccomp. Checked
    here by compiling with the Linux macros undefined (glibc's own headers
    still come from Linux: this shows only that our code needs none of
    <linux/...> off Linux, not that FreeBSD's headers accept it)."""
    import re
    import shutil

    for name in EXTENSION_SOURCES:
        # Per open #if: True inside a Linux-only branch, False in its other
        # branch, None for conditions on anything else.
        linux: list[bool | None] = []
        for line in (ROOT / "csrc" / name).read_text().splitlines():
            if m := re.match(r"#\s*if(n?)def\s+__linux__\b", line):
                linux.append(not m.group(1))
            elif re.match(r"#\s*if", line):
                linux.append(None)
            elif re.match(r"#\s*else", line) and linux[-1] is not None:
                linux[-1] = not linux[-1]
            elif re.match(r"#\s*endif", line):
                linux.pop()
            elif re.match(r"#\s*include\s*<linux/", line):
                assert True in linux, f"{name}: {line} outside #ifdef __linux__"
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc is not None
    for name in EXTENSION_SOURCES[:3]:
        r = subprocess.run([cc, "-fsyntax-only", "-std=gnu11", "-Wall", "-Wextra", "-Werror",
                            "-U__linux__", "-U__linux", "-Ulinux", "-U__gnu_linux__",
                            "-include", "stdint.h", "-include", "stddef.h", "-I", "csrc",
                            f"csrc/{name}"], cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_sigterm_ends_a_cli_run_in_one_line_and_destroys_the_vm(tmp_path: Path) -> None:
    """A real SIGTERM while the guest spins (through the backend's C kick
    handler, which chains to the CLI's latch): the run stops between exits,
    tears down, and says `Exiting on signal 15`."""
    import signal

    ops = tmp_path / "ops.json"
    returncode, out, err = signal_once_running(cli_child("spin", ops), f"{ops}.running",
                                               signal.SIGTERM, env=cli_env(), cwd=ROOT)
    assert returncode == 1, err
    assert out == b""
    assert err.decode().splitlines() == [f"pytender: {sandbox.NO_CAPSICUM}",
                                         "pytender: Exiting on signal 15"]
    got = json.loads(ops.read_text())
    assert got[:-2] == expected("main", got.count("VM_RUN"))[:-2]
    assert got[-2:] == DESTROY["main"] and 0 < got.count("VM_RUN") < 30_000


def wx_abort(rip: int) -> Step:
    """The guest's abort after an instruction-fetch #PF at `rip` (a W^X
    fault as the bindings report it: HALT 255 with a trap-frame cookie)."""
    def step(v: FakeVmm) -> bytes:
        frame, arg = v.scratch(0x200), v.scratch(0x100)
        v.guest_mem()[frame:frame + abi.TRAP_FRAME.size] = abi.TRAP_FRAME.pack(
            rip, 0x11, rip, 8, 2, 0x1ff000, 0x10)
        v.guest_mem()[arg:arg + abi.HALT.size] = abi.HALT.pack(frame, 255)
        return hypercall(abi.Hypercall.HALT, arg)
    return step


def test_a_wx_abort_ends_with_the_hosts_own_fault_line_not_kvms(
        freebsd: list[FakeVmm]) -> None:
    """The W^X fault line comes from the backend (translation_fault): on
    bhyve it names no KVM. Simulated: untested on real FreeBSD."""
    host = fake_host("main", [wx_abort(0x105000)])
    got, _ = run_on(freebsd, host, hello_cfg())
    assert isinstance(got, GuestFault), got
    assert str(got) == "host/guest translation fault: rip=0x105000"
    assert host.operations() == expected("main", 1)
