"""Capsicum on the bhyve backend: SIMULATED, UNTESTED ON REAL FREEBSD.

FreeBSD cannot run here. The libc calls (cap_rights_limit,
cap_ioctls_limit, cap_enter) go to a recording libc that writes each one
into the same list as the fake vmm host (tests/bhyve_fake.py), so one
timeline shows which fd got which rights words and ioctl list, in which
order against the vmm calls, for each VM-lifetime path (main, 15.0, 14).
The rights words are checked against values worked out by hand from
FreeBSD's sys/capsicum.h (tender/freebsd/rights.py names the source), not
against the encoder. What this cannot show: that a FreeBSD kernel accepts
the words, or that nothing the run does afterwards needs more rights than
these (README, "FreeBSD / bhyve backend")."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from bhyve_fake import FakeVmm, fake_host, halt, hello, puts, ring_write, signal_once_running
from conftest import ROOT, guest
from test_bhyve import Recorder, freebsd
from test_bhyve_run import FRAME, MEM, PollKqueue, expected

import tender.bhyve.vm as bhyve_vm
from tender import sandbox
from tender.bhyve import ioc
from tender.cli import exit_code_for
from tender.config import BlockSpec, HandlerMode, NetSpec, VmConfig
from tender.devices import kqwait
from tender.devices.pipe import FramePipe
from tender.errors import CapsicumError
from tender.freebsd import rights as r
from tender.freebsd.capsicum import NO_CAPMODE_SYSCTL, Capsicum
from tender.session import Outcome
from tender.vm import Tender


@dataclass
class RecordingLibc:
    """FreeBSD's Capsicum calls, written down into `calls` (share the fake
    host's list for one timeline). `fail`: call name -> the errnos its
    next calls return, in order (0: succeed)."""

    calls: list[tuple[object, ...]] = field(default_factory=list)
    fail: dict[str, list[int]] = field(default_factory=dict)
    entered: bool = False

    def _maybe_fail(self, name: str) -> None:
        errs = self.fail.get(name)
        if errs and (e := errs.pop(0)):
            raise OSError(e, os.strerror(e))

    def cap_rights_limit(self, fd: int, words: tuple[int, int]) -> None:
        self.calls.append(("cap_rights_limit", fd, tuple(words)))
        self._maybe_fail("cap_rights_limit")

    def cap_ioctls_limit(self, fd: int, cmds: tuple[int, ...]) -> None:
        self.calls.append(("cap_ioctls_limit", fd, tuple(cmds)))
        self._maybe_fail("cap_ioctls_limit")

    def cap_enter(self) -> None:
        self.calls.append(("cap_enter",))
        self._maybe_fail("cap_enter")
        self.entered = True


# --- the encoding -----------------------------------------------------------

# By hand from sys/capsicum.h: CAPRIGHT(idx, bit) = 1 << (57 + idx) | bit.
SOURCED = {
    "CAP_READ": 0x0200000000000001, "CAP_WRITE": 0x0200000000000002,
    "CAP_SEEK": 0x020000000000000C,    # CAP_SEEK_TELL (0x4) | 0x8
    "CAP_EVENT": 0x0400000000000020, "CAP_IOCTL": 0x0400000000000080,
    "CAP_MMAP_RW": 0x020000000000001F,  # MMAP 0x10 | SEEK 0xc | READ 0x1 | WRITE 0x2
    "CAP_CREATE": 0x0200000000000040, "CAP_LOOKUP": 0x0200000000000400,
}
NONE = (0x0200000000000000, 0x0400000000000000)   # CAP_NONE: each word's index bit
# Each fd kind's cr_rights[] words (BHYVE_SPEC 9 for VM, TAP, BLOCK, DUMPCORE_DIR).
WORDS = {
    r.FdKind.VM: (0x020000000000001F, 0x0400000000000080),            # IOCTL, MMAP_RW
    r.FdKind.VMMCTL_DESTROY: (0x0200000000000000, 0x0400000000000080),  # IOCTL
    r.FdKind.VMMCTL_HELD: NONE,
    r.FdKind.TAP: (0x0200000000000003, 0x0400000000000020),            # READ WRITE, EVENT
    r.FdKind.BLOCK: (0x020000000000010F, 0x0400000000000000),   # READ WRITE SEEK FSYNC
    r.FdKind.WAITSET: (0x0200000000000000, 0x0400000000000040),        # KQUEUE_EVENT
    r.FdKind.KICK_READ: (0x0200000000000001, 0x0400000000000000),
    r.FdKind.KICK_WRITE: (0x0200000000000002, 0x0400000000000000),
    r.FdKind.CONSOLE: (0x020000000008000E, 0x0400000000000000),        # WRITE SEEK FSTAT
    r.FdKind.DUMPCORE_DIR: (0x020000000000044E, 0x0400000000000000),   # CREATE WRITE LOOKUP SEEK
}
# BHYVE_SPEC 3.2: the eight ioctls, in CAPSICUM_VM_IOCTLS order, per version.
VM_IOCTLS_14 = (0x80207601, 0x80107602, 0x8020760E, 0x80287610, 0x80187616, 0x80107614,
                0xC0107615, 0x8004765A)
VM_IOCTLS_15 = (0x80207601, 0x80107602, 0x8038760E, 0x8020760E, 0x80287610, 0x80187616,
                0x80107614, 0xC0107615, 0x8004765A)
VM_IOCTLS_13 = (0xC0907601, *VM_IOCTLS_14[1:])
VMMCTL_VM_DESTROY = 0xC1285601


# cr_rights[] after cap_rights_init(&rights, CAP_X) for each of them.
SOURCED_WORDS = {
    "CAP_READ": (0x0200000000000001, NONE[1]), "CAP_WRITE": (0x0200000000000002, NONE[1]),
    "CAP_SEEK": (0x020000000000000C, NONE[1]), "CAP_EVENT": (NONE[0], 0x0400000000000020),
    "CAP_IOCTL": (NONE[0], 0x0400000000000080), "CAP_MMAP_RW": (0x020000000000001F, NONE[1]),
    "CAP_CREATE": (0x0200000000000040, NONE[1]), "CAP_LOOKUP": (0x0200000000000400, NONE[1]),
}


@pytest.mark.parametrize("name", sorted(SOURCED))
def test_rights_values_and_words_match_capsicum_h(name: str) -> None:
    assert getattr(r, name) == SOURCED[name]
    assert r.rights_words(getattr(r, name)) == SOURCED_WORDS[name]


def test_rights_words_are_cap_rights_init_s() -> None:
    assert r.rights_words() == NONE
    assert r.rights_words(r.CAP_READ, r.CAP_READ) == (SOURCED["CAP_READ"], NONE[1])
    assert r.rights_words(r.CAP_EVENT, r.CAP_WRITE) == (0x0200000000000002, 0x0400000000000020)
    assert {k: r.rights_words(*v) for k, v in r.RIGHTS.items()} == WORDS
    for bad in (1 << 62 | r.CAP_READ, 0x1, r.CAP_READ | 1 << 58, 1 << 59 | 1):
        with pytest.raises(ValueError, match="Capsicum right"):
            r.rights_words(bad)


@pytest.mark.parametrize(("rel", "cmds"), [(1399999, VM_IOCTLS_13), (1403000, VM_IOCTLS_14),
                                           (1500000, VM_IOCTLS_15)])
def test_vm_fd_allowlist_is_the_backends_ioctls_for_the_version(
        rel: int, cmds: tuple[int, ...]) -> None:
    assert ioc.vm_fd_ioctls(ioc.abi_for(rel)) == cmds


def test_an_ioctl_right_needs_an_allowlist_and_only_it_gets_one() -> None:
    caps = Capsicum(RecordingLibc())
    with pytest.raises(ValueError):
        caps.limit(r.FdKind.VM, 3)
    with pytest.raises(ValueError):
        caps.limit(r.FdKind.TAP, 3, (1,))


class FakeLib:
    """Stands in for the dlopen'ed libc under FreeBsdLibc: reads what the
    cffi arguments hold, as the kernel would, and fails like libc (-1 and
    errno) when told to."""

    def __init__(self, ffi: object) -> None:
        self.ffi = ffi
        self.seen: list[tuple[object, ...]] = []
        self.errno = 0

    def _rc(self) -> int:
        if self.errno:
            self.ffi.errno = self.errno  # type: ignore[attr-defined]
            return -1
        return 0

    def cap_rights_limit(self, fd: int, rights: object) -> int:
        self.seen.append(("rights", fd, rights[0], rights[1]))  # type: ignore[index]
        return self._rc()

    def cap_ioctls_limit(self, fd: int, cmds: object, n: int) -> int:
        self.seen.append(("ioctls", fd, [cmds[i] for i in range(n)]))  # type: ignore[index]
        return self._rc()

    def cap_enter(self) -> int:
        self.seen.append(("enter",))
        return self._rc()


def test_freebsd_libc_passes_the_words_and_the_ioctl_array() -> None:
    """The real wrapper's cffi marshalling (uint64_t[2], unsigned long[] and
    its count, -1/errno to OSError), over a stand-in for libc."""
    from tender.freebsd.libc import FreeBsdLibc, capsicum_ffi

    ffi = capsicum_ffi()
    lib = FakeLib(ffi)
    wrapper = FreeBsdLibc(ffi, lib)
    wrapper.cap_rights_limit(12, WORDS[r.FdKind.VM])
    wrapper.cap_ioctls_limit(12, VM_IOCTLS_15)
    wrapper.cap_ioctls_limit(11, ())
    wrapper.cap_enter()
    assert lib.seen == [("rights", 12, *WORDS[r.FdKind.VM]), ("ioctls", 12, list(VM_IOCTLS_15)),
                        ("ioctls", 11, []), ("enter",)]
    lib.errno = errno.ENOTCAPABLE if hasattr(errno, "ENOTCAPABLE") else errno.EPERM
    with pytest.raises(OSError) as got:
        wrapper.cap_enter()
    assert got.value.errno == lib.errno


# --- the backend's own fds, per VM-lifetime path ------------------------------

def open_backend(host: Recorder) -> tuple[bhyve_vm.BhyveBackend, RecordingLibc]:
    libc = RecordingLibc(host.calls)
    backend = bhyve_vm.BhyveBackend(host, Capsicum(libc))
    backend.open(MEM)
    return backend, libc


def caps_calls(calls: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return [c for c in calls if str(c[0]).startswith("cap_")]


def test_vm_fd_is_limited_before_its_memory_is_mapped_on_15() -> None:
    host = freebsd(osreldate=1500000)
    host.fail["/dev/vmmctl"] = [errno.ENOENT]
    backend, _libc = open_backend(host)
    kinds = [c[0] for c in host.calls]
    assert kinds.index("cap_ioctls_limit") < kinds.index("mmap")
    assert caps_calls(host.calls) == [("cap_rights_limit", 11, WORDS[r.FdKind.VM]),
                                      ("cap_ioctls_limit", 11, VM_IOCTLS_15)]
    assert backend.capsicum is not None and backend.capsicum.refused == NO_CAPMODE_SYSCTL
    backend.close()


# --- whole simulated runs -------------------------------------------------------

@dataclass
class Sim:
    """The fake hosts of a test, each with the RecordingLibc on its list."""

    hosts: list[FakeVmm] = field(default_factory=list)
    libcs: dict[int, RecordingLibc] = field(default_factory=dict)

    def libc_of(self, host: FakeVmm) -> RecordingLibc:
        return self.libcs.setdefault(id(host), RecordingLibc(host.calls))


@pytest.fixture
def simulated(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    """FreeBSD to tender.host and tender.sandbox; the vmm calls go to the
    fake the test runs on, Capsicum's to a RecordingLibc on its list."""
    sim = Sim()
    monkeypatch.setattr(sys, "platform", "freebsd14")
    monkeypatch.setattr(bhyve_vm, "FreeBsdHost", lambda: sim.hosts[-1])
    monkeypatch.setattr(Capsicum, "load",
                        classmethod(lambda cls: cls(sim.libc_of(sim.hosts[-1]))))
    yield sim


def sandboxed_run(sim: Sim, host: FakeVmm,
                  cfg: VmConfig) -> tuple[Outcome | BaseException, list[str], int]:
    """Tender(cfg, sandbox=True).run() over `host`: the outcome (or what it
    raised), the warning lines, the console fd."""
    sim.hosts.append(host)
    said: list[str] = []
    rfd, wfd = os.pipe()
    try:
        try:
            got: Outcome | BaseException = Tender(cfg, console_fd=wfd, diag=said.append,
                                                  sandbox=True).run()
        except BaseException as exc:    # the test looks at it
            got = exc
    finally:
        os.close(wfd)
        os.close(rfd)
    return got, said, wfd


def hello_cfg() -> VmConfig:
    return VmConfig(kernel=guest("hello"), args=(b"Hello_Solo5",), mem=MEM)


def ops_and_caps(host: FakeVmm) -> list[str]:
    """The vmm operations (as bhyve_fake names them) with each Capsicum
    call in its place."""
    out: list[str] = []
    rest = iter(host.operations())
    for call in host.calls:
        if str(call[0]).startswith("cap_"):
            out.append(str(call[0]))
        elif call[0] in ("open", "close", "ioctl", "sysctl_write", "mmap"):
            out.append(next(rest))
    return out


VM_FD, CTL_FD = 12, 11   # the fake's fd numbers: vmmctl first (main, 15.0)
CTL_LIMIT = {
    "main": [("cap_rights_limit", CTL_FD, WORDS[r.FdKind.VMMCTL_HELD])],
    "15.0": [("cap_rights_limit", CTL_FD, WORDS[r.FdKind.VMMCTL_DESTROY]),
             ("cap_ioctls_limit", CTL_FD, (VMMCTL_VM_DESTROY,))],
    "14": [],
}


@pytest.mark.parametrize("lifecycle", ["main", "15.0", "14"])
def test_each_fd_gets_its_rights_and_cap_enter_precedes_the_first_vm_run(
        simulated: Sim, lifecycle: str) -> None:
    host = fake_host(lifecycle, hello())
    got, said, console = sandboxed_run(simulated, host, hello_cfg())
    assert isinstance(got, Outcome) and got.exit_code == 0, got
    vm_fd = VM_FD if lifecycle != "14" else 11
    vm_limit = [("cap_rights_limit", vm_fd, WORDS[r.FdKind.VM]),
                ("cap_ioctls_limit", vm_fd, VM_IOCTLS_14)]
    tail = [("cap_rights_limit", console, WORDS[r.FdKind.CONSOLE]),
            ("cap_rights_limit", 2, WORDS[r.FdKind.CONSOLE])]
    enter = [("cap_enter",)] if lifecycle != "14" else []
    assert caps_calls(host.calls) == [*CTL_LIMIT[lifecycle], *vm_limit, *tail, *enter]
    # The vmm calls are unchanged, and each Capsicum call sits where it must.
    assert host.operations() == expected(lifecycle, runs=4)
    timeline = ops_and_caps(host)
    opened = max(i for i, op in enumerate(timeline) if op.startswith("open "))
    first_mmap = timeline.index("mmap")
    assert timeline.index("cap_ioctls_limit", opened) < first_mmap
    if lifecycle == "14":
        assert said == [NO_CAPMODE_SYSCTL] and "cap_enter" not in timeline
        assert timeline[-1] == "sysctl hw.vmm.destroy"      # still destroyed at exit
    else:
        assert said == []
        assert opened < timeline.index("cap_enter") < timeline.index("VM_RUN")
        assert timeline.index("cap_enter") > max(
            i for i, op in enumerate(timeline) if op == "VM_ACTIVATE_CPU")
    if lifecycle == "15.0":     # the destroy ioctl is in the vmmctl fd's allowlist
        assert timeline[-3:] == ["close vm", "VMMCTL_VM_DESTROY", "close vmmctl"]


def test_block_fd_gets_read_write_seek_fsync(simulated: Sim, tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(8192))
    host = fake_host("main", [halt(0)])
    cfg = VmConfig(kernel=guest("blk"), mem=MEM, blocks=(BlockSpec("storage", path=str(image)),))
    opened: list[int] = []
    real_open = os.open

    def spy(path: str, flags: int, *a: int) -> int:
        fd = real_open(path, flags, *a)
        if path == str(image):
            opened.append(fd)
        return fd

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "open", spy)
        got, _said, console = sandboxed_run(simulated, host, cfg)
    assert isinstance(got, Outcome) and got.exit_code == 0, got
    (block_fd,) = opened
    assert caps_calls(host.calls)[3:] == [
        ("cap_rights_limit", block_fd, WORDS[r.FdKind.BLOCK]),
        ("cap_rights_limit", console, WORDS[r.FdKind.CONSOLE]),
        ("cap_rights_limit", 2, WORDS[r.FdKind.CONSOLE]), ("cap_enter",)]


class FdKqueue(PollKqueue):
    """PollKqueue with a descriptor number to be limited."""

    def fileno(self) -> int:
        return 777


def test_tap_kqueue_and_kick_pipe_get_their_rights(
        simulated: Sim, monkeypatch: pytest.MonkeyPatch) -> None:
    """A net device with the ring in thread mode on a host without epoll:
    the tap (here a FramePipe end), the kqueue and both kick pipe ends."""
    import select

    from tender.devices.ring import NetRing

    monkeypatch.setenv("PYTENDER_RING_MODE", "thread")
    monkeypatch.delattr(select, "epoll")
    monkeypatch.setattr(kqwait, "SelectKqueue", FdKqueue)
    rings: list[NetRing] = []
    start = NetRing.start_piped.__func__  # type: ignore[attr-defined]

    def spy(cls: type[NetRing], *a: object) -> NetRing | None:
        ring = start(cls, *a)
        if ring is not None:
            rings.append(ring)
        return ring  # type: ignore[no-any-return]

    monkeypatch.setattr(NetRing, "start_piped", classmethod(spy))
    frame_pipe = FramePipe()
    host = fake_host("main", [ring_write(FRAME), halt(0)])
    cfg = VmConfig(kernel=guest("net"), mem=MEM, handlers=HandlerMode.NATIVE,
                   nets=(NetSpec("service0", pipe=frame_pipe),))
    try:
        kicks: list[tuple[int, int] | None] = []
        real_kick_fds = NetRing.kick_fds
        monkeypatch.setattr(NetRing, "kick_fds",
                            lambda self: kicks.append(real_kick_fds(self)) or kicks[-1])
        got, _said, console = sandboxed_run(simulated, host, cfg)
        assert isinstance(got, Outcome) and got.exit_code == 0, got
        assert frame_pipe.recv(10) == FRAME
    finally:
        frame_pipe.close()
    ((read_fd, write_fd),) = [k for k in kicks if k is not None]
    got_limits = caps_calls(host.calls)[3:]
    tap = got_limits[0]     # the tender's dup of the FramePipe's guest end
    assert tap[0] == "cap_rights_limit" and tap[2] == WORDS[r.FdKind.TAP]
    assert got_limits[1:] == [
        ("cap_rights_limit", 777, WORDS[r.FdKind.WAITSET]),
        ("cap_rights_limit", read_fd, WORDS[r.FdKind.KICK_READ]),
        ("cap_rights_limit", write_fd, WORDS[r.FdKind.KICK_WRITE]),
        ("cap_rights_limit", console, WORDS[r.FdKind.CONSOLE]),
        ("cap_rights_limit", 2, WORDS[r.FdKind.CONSOLE]), ("cap_enter",)]


def test_every_vm_fd_ioctl_of_a_run_is_in_the_allowlist(
        simulated: Sim, tmp_path: Path) -> None:
    """Boot, runs and dumpcore's VM_GET_REGISTER (a debug run: limited fds,
    no capability mode, as solo5-hvt-debug drops nothing)."""
    host = fake_host("main", [puts(b"SUCCESS\n"), halt(255)])
    cfg = VmConfig(kernel=guest("hello"), mem=MEM, dumpcore=str(tmp_path))
    got, _said, _console = sandboxed_run(simulated, host, cfg)
    assert isinstance(got, Outcome) and got.exit_code == 255, got
    used = {c[2] for c in host.calls if c[0] == "ioctl" and c[1] == VM_FD}
    assert ioc.VM_GET_REGISTER in used and used <= set(VM_IOCTLS_14)
    assert ("cap_enter",) not in host.calls and list(tmp_path.iterdir())


@pytest.mark.parametrize(("call", "errs", "message"), [
    ("cap_rights_limit", [0, errno.EPERM],
     "Capsicum: could not limit the VM fd: cap_rights_limit: Operation not permitted"),
    ("cap_ioctls_limit", [errno.EINVAL],
     "Capsicum: could not limit the VM fd: cap_ioctls_limit: Invalid argument"),
    ("cap_rights_limit", [0, 0, errno.EBADF],
     "Capsicum: could not limit the console fd: cap_rights_limit: Bad file descriptor"),
    ("cap_enter", [errno.EPERM], "Capsicum: cap_enter: Operation not permitted"),
])
def test_a_failing_capsicum_call_is_one_line_exit_1_and_the_vm_goes(
        simulated: Sim, call: str, errs: list[int], message: str) -> None:
    host = fake_host("main", hello())
    simulated.libc_of(host).fail[call] = errs
    got, _said, _console = sandboxed_run(simulated, host, hello_cfg())
    assert isinstance(got, CapsicumError) and got.message == message
    assert exit_code_for(got) == 1
    ops = host.operations()
    assert "VM_RUN" not in ops and ops[-2:] == ["close vm", "close vmmctl"]


@pytest.mark.parametrize(("lifecycle", "kind", "tail"), [
    ("main", "destroy on close", ["VMMCTL_VM_CREATE", "close vmmctl"]),
    ("15.0", "destroy at exit", ["VMMCTL_VM_CREATE", "VMMCTL_VM_DESTROY", "close vmmctl"])])
def test_a_failing_vmmctl_limit_destroys_the_new_vm(
        simulated: Sim, lifecycle: str, kind: str, tail: list[str]) -> None:
    host = fake_host(lifecycle, hello())
    simulated.libc_of(host).fail["cap_rights_limit"] = [errno.EPERM]
    got, _said, _console = sandboxed_run(simulated, host, hello_cfg())
    assert isinstance(got, CapsicumError) and got.message == (
        f"Capsicum: could not limit the vmmctl fd ({kind}): cap_rights_limit: "
        "Operation not permitted")
    assert host.operations()[-len(tail):] == tail
    assert not any(op.startswith("open /dev/vmm/") for op in host.operations())


def test_a_kernel_without_capsicum_warns_once_and_runs(simulated: Sim) -> None:
    host = fake_host("main", hello())
    simulated.libc_of(host).fail["cap_rights_limit"] = [errno.ENOSYS]
    got, said, _console = sandboxed_run(simulated, host, hello_cfg())
    assert isinstance(got, Outcome) and got.exit_code == 0, got
    assert said == [sandbox.NO_CAPSICUM]
    assert len(caps_calls(host.calls)) == 1     # the first one said ENOSYS; nothing after


def test_a_libc_without_capsicum_is_reported_not_raised() -> None:
    from tender.freebsd import libc

    got = libc.load()       # Linux's libc has no cap_enter
    assert isinstance(got, str) and got.startswith("libc has no Capsicum")
    assert sandbox.enter(platform="freebsd15", held=sandbox.Held(object())) == sandbox.NO_CAPSICUM


# --- nothing is imported (or opened by path) after cap_enter ---------------------

CHILD = ROOT / "tests" / "capsicum_child.py"


def child(lifecycle: str, scenario: str, out: Path, fail: str = "") -> list[str]:
    return [sys.executable, str(CHILD), lifecycle, scenario, str(out), fail,
            "--mem=64", guest("hello"), "Hello_Solo5"]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTENDER_NO_SECCOMP"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests"), str(ROOT)])
    return env


@pytest.mark.parametrize(("lifecycle", "scenario", "status"), [
    ("main", "hello", 0), ("15.0", "hello", 0), ("main", "bad_port", 1),
    ("main", "suspended", 1), ("main", "run_fails", 1), ("main", "host_raises", 1)])
def test_cli_run_imports_and_opens_nothing_after_cap_enter(
        tmp_path: Path, lifecycle: str, scenario: str, status: int) -> None:
    """The CLI entry in its own process with an audit hook: every path
    open and every import (a module not yet loaded) after cap_enter would
    fail with ECAPMODE on FreeBSD, so there must be none, on the guest's
    halt and on each fatal path, up to the VM's destruction."""
    out = tmp_path / "timeline.json"
    r = subprocess.run(child(lifecycle, scenario, out), capture_output=True, timeout=120,
                       env=child_env(), cwd=ROOT)
    assert r.returncode == status, r.stderr
    timeline = [tuple(c) for c in json.loads(out.read_text())]
    kinds = [c[0] for c in timeline]
    enter = kinds.index("cap_enter")
    assert [c for c in timeline[enter:] if c[0] in ("import", "path_open")] == []
    assert ("path_open", guest("hello")) in timeline[:enter]     # the hook sees opens
    assert max(i for i, k in enumerate(kinds) if k in ("open", "path_open")) < enter
    assert enter < kinds.index("ioctl_run")
    assert b"Capsicum" not in r.stderr and b"sandbox" not in r.stderr


def test_the_audit_hook_sees_an_import_after_cap_enter(tmp_path: Path) -> None:
    """The control for the test above: a "guest" step that imports a module
    no run loads shows up as a late import (and a late path open)."""
    out = tmp_path / "timeline.json"
    r = subprocess.run(child("main", "late_import", out), capture_output=True, timeout=120,
                       env=child_env(), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    timeline = [tuple(c) for c in json.loads(out.read_text())]
    late = timeline[[c[0] for c in timeline].index("cap_enter"):]
    assert ("import", "colorsys") in late and any(c[0] == "path_open" for c in late)


def test_sigterm_in_capability_mode_imports_nothing(tmp_path: Path) -> None:
    import signal

    out = tmp_path / "timeline.json"
    returncode, _o, err = signal_once_running(child("main", "spin", out), f"{out}.running",
                                              signal.SIGTERM, env=child_env(), cwd=ROOT)
    assert returncode == 1 and err.decode().splitlines() == [
        "pytender: Exiting on signal 15"], err
    timeline = [tuple(c) for c in json.loads(out.read_text())]
    enter = [c[0] for c in timeline].index("cap_enter")
    assert [c for c in timeline[enter:] if c[0] in ("import", "path_open")] == []
    assert timeline[-2:] == [("close", VM_FD), ("close", CTL_FD)]


def test_cli_cap_enter_failure_is_one_line_exit_1(tmp_path: Path) -> None:
    out = tmp_path / "timeline.json"
    r = subprocess.run(child("main", "hello", out, "cap_enter"), capture_output=True,
                       timeout=120, env=child_env(), cwd=ROOT)
    assert r.returncode == 1
    assert r.stderr.decode().splitlines() == ["pytender: Capsicum: cap_enter: Operation not "
                                              "permitted"]
    timeline = [tuple(c) for c in json.loads(out.read_text())]
    assert "ioctl_run" not in [c[0] for c in timeline]
    assert timeline[-2:] == [("close", VM_FD), ("close", CTL_FD)]


def test_freebsd_is_never_imported_on_linux_at_boot() -> None:
    """tests/test_bootpath.py lists tender.freebsd; the layer test gives it
    layer 2, below bhyve, which imports it."""
    from test_bootpath import NOT_ON_THE_BOOT_PATH

    assert "tender.freebsd" in NOT_ON_THE_BOOT_PATH
    code = ("import sys, tender.cli, tender.vm, tender.sandbox, tender.host\n"
            "print(sorted(m for m in sys.modules if m.startswith('tender.freebsd')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert res.stdout == "[]\n", res.stderr

