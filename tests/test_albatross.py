"""albatrossd's launch, replayed (issue 12 part 2, ORCHESTRATORS.md 2).

Albatross finds the tender as `<dbdir>/solo5-hvt.<ABI>` or `solo5-hvt` on
PATH, probes it with `--version` on every create, then runs

    taskset -c 0 TENDER --mem=M --net:BRIDGE=TAP --net-mac:BRIDGE=MAC
        --block:NAME=<dbdir>/block/NAME -- <tmpdir>/NAME.img --name=NAME ARGS

with fds 0, 1 and 2 all one FIFO opened O_WRONLY|O_APPEND, SIGPIPE ignored
(systemd IgnoreSIGPIPE=true), stops it with SIGTERM, reads its restart
policy off the exit status and its statistics off /proc/<pid>."""

from __future__ import annotations

import fcntl
import os
import resource
import secrets
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import guest, require_kvm

VENV_BIN = Path(sys.executable).parent
BRIDGE = "service"
MAC = "02:a1:ba:70:55:01"
SECTOR = 512
SECTORS = 64


def should_restart(status: int, restart_on_fail: bool) -> bool:
    """Albatross's policy (vmm_core.ml should_restart), restated: a signal
    never; exit 1 and 60-64 never; any other exit only with
    --restart-on-fail. (Popen: a negative status is a signal.)"""
    if status < 0 or status == 1 or 60 <= status <= 64:
        return False
    return restart_on_fail


def albatross_version_ok(tender: str, abi: int) -> bool:
    """vmm_unix.ml: run with stderr->stdout; exit 0 and some line that
    splits on ' ' to exactly ["ABI"; "version"; N] with N = the image's ABI."""
    p = subprocess.run([tender, "--version"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=30)
    return p.returncode == 0 and any(
        line.split(" ") == ["ABI", "version", str(abi)] for line in p.stdout.split("\n"))


@dataclass(frozen=True)
class Host:
    """dbdir, tmpdir and the network namespace holding the taps."""
    dbdir: Path
    tmpdir: Path
    netns: str

    def create(self, name: str, tender: str, *args: str, mem: int = 64,
               sigpipe: signal.Handlers = signal.SIG_IGN) -> Unikernel:
        image = self.tmpdir / f"{name}.img"
        shutil.copy(guest("albatross"), image)
        block = self.dbdir / "block" / name
        if not block.exists():
            with open(block, "wb") as f:
                f.truncate(SECTORS * SECTOR)
        fifo = self.tmpdir / "fifo" / name
        if not fifo.exists():
            os.mkfifo(fifo)
        tap = f"alb{secrets.token_hex(3)}"
        subprocess.run(["ip", "-n", self.netns, "tuntap", "add", "dev", tap, "mode", "tap"],
                       check=True)
        subprocess.run(["ip", "-n", self.netns, "link", "set", tap, "up"], check=True)
        # The console reader (albatross-console) has the FIFO open first.
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        writer = os.open(fifo, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        argv = ["taskset", "-c", "0", tender, f"--mem={mem}", f"--net:{BRIDGE}={tap}",
                f"--net-mac:{BRIDGE}={MAC}", f"--block:storage={block}", "--", str(image),
                f"--name={name}", *args]
        assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN
        try:
            # restore_signals=False: the child inherits SIGPIPE ignored, as
            # albatrossd's children do (True: the default, as from a shell).
            proc = subprocess.Popen(["ip", "netns", "exec", self.netns, *argv],
                                    stdin=writer, stdout=writer, stderr=writer,
                                    restore_signals=sigpipe != signal.SIG_IGN, cwd="/")
        finally:
            os.close(writer)
        fcntl.fcntl(reader, fcntl.F_SETFL, 0)
        return Unikernel(proc, reader, block)


@dataclass
class Unikernel:
    proc: subprocess.Popen[bytes]
    console: int        # our end of the FIFO, -1 once closed
    block: Path
    text: str = ""

    def read_until(self, needle: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            left = deadline - time.monotonic()
            assert left > 0, f"no {needle!r} in {self.text[-2000:]!r}"
            if select.select([self.console], [], [], left)[0]:
                chunk = os.read(self.console, 65536)
                assert chunk, f"console closed before {needle!r}: {self.text[-2000:]!r}"
                self.text += chunk.decode(errors="replace")
        return self.text

    def drain(self) -> str:
        while self.console >= 0:
            chunk = os.read(self.console, 65536)
            if not chunk:
                self.close_console()
            self.text += chunk.decode(errors="replace")
        return self.text

    def close_console(self) -> None:
        if self.console >= 0:
            os.close(self.console)
            self.console = -1

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def no_core() -> Iterator[None]:
    """systemd's default for albatrossd (LimitCORE soft 0): an abort leaves
    no core file behind."""
    core = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (0, core[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, core)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    require_kvm()
    if os.geteuid() != 0:
        pytest.skip("taps need root (albatrossd runs as root)")
    for tool in ("ip", "taskset"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    netns = f"alb-urunc-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    h = Host(tmp_path / "var-lib-albatross", tmp_path / "run-albatross", netns)
    (h.dbdir / "block").mkdir(parents=True)
    (h.tmpdir / "fifo").mkdir(parents=True)
    try:
        with no_core():
            yield h
    finally:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)


def tender_on_path() -> str:
    """`solo5-hvt` as the PATH lookup finds it: the installed command."""
    path = shutil.which("solo5-hvt", path=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    assert path == str(VENV_BIN / "solo5-hvt")
    return path


def cut_of(block: Path) -> tuple[int, int]:
    """The writes on disk form one consistent cut: sectors 0..k-1 hold pass
    P, the rest pass P-1 or nothing yet. Returns (P, k)."""
    data = block.read_bytes()
    passes = []
    for s in range(SECTORS):
        mark = struct.unpack_from("<QQ", data, s * SECTOR)
        assert mark in ((s, mark[1]), (0, 0)), (s, mark)
        passes.append(-1 if mark == (0, 0) and s else mark[1])
    top = passes[0]
    k = next((s for s, p in enumerate(passes) if p != top), SECTORS)
    assert all(p in (top - 1, -1) for p in passes[k:]), passes
    assert len(set(passes[k:])) <= 1, passes
    return top, k


def test_version_probe_as_albatross_parses_it(tmp_path: Path) -> None:
    found = tender_on_path()
    assert albatross_version_ok(found, 2)
    assert not albatross_version_ok(found, 1)
    # `<dbdir>/solo5-hvt.2`, Albatross's first choice: a copy of the launcher
    # with no interpreter beside it (the compiled-in fallback finds one).
    dbcopy = tmp_path / "solo5-hvt.2"
    shutil.copy(found, dbcopy)
    assert albatross_version_ok(str(dbcopy), 2)
    t0 = time.monotonic()
    subprocess.run([found, "--version"], capture_output=True, check=True)
    print(f"--version took {time.monotonic() - t0:.3f} s")


@pytest.mark.parametrize("status", [0, 1, 255, 7])
def test_exit_statuses_read_by_the_restart_policy(host: Host, status: int) -> None:
    u = host.create("exiter", tender_on_path(), "exit", str(status))
    got = u.wait()
    text = u.drain()
    assert got == status, text
    assert f"albatross: name=exiter mac={MAC}" in text, text
    assert should_restart(got, restart_on_fail=True) == (status not in (1,)), got
    assert not should_restart(got, restart_on_fail=False)


def test_taskset_same_pid_stats_and_sigterm(host: Host) -> None:
    u = host.create("runner", tender_on_path(), "write", "100")
    try:
        u.read_until("written 101 ")    # a full pass on disk, the second under way
        pid = u.proc.pid                # taskset's pid: it exec'd the tender in place
        assert Path(f"/proc/{pid}/exe").resolve().name.startswith("python")
        stat = Path(f"/proc/{pid}/stat").read_text()
        # albatross_stats_pure.ml: from the first '(' to the last ')', comm
        # unchecked, then the fields; needs >= 52 in all.
        rest = stat[stat.rindex(")") + 2:].split(" ")
        assert 2 + len(rest) >= 52, stat
        assert len(Path(f"/proc/{pid}/statm").read_text().split()) >= 7
        status = Path(f"/proc/{pid}/status").read_text()
        assert "voluntary_ctxt_switches:" in status and "nonvoluntary_ctxt_switches:" in status
        assert "Cpus_allowed_list:\t0\n" in status, status
        os.kill(pid, signal.SIGTERM)    # albatross destroy
        got = u.wait(timeout=30)
        text = u.drain()
    finally:
        u.close_console()
        u.wait()
    assert got == 1, text
    assert text.count("solo5-hvt: Exiting on signal 15") == 1, text[-500:]
    assert not should_restart(got, restart_on_fail=True)
    top, k = cut_of(u.block)
    assert top >= 101, (top, k)


@pytest.mark.parametrize("sigpipe", [signal.SIG_IGN, signal.SIG_DFL])
def test_console_reader_goes_away(host: Host, sigpipe: signal.Handlers) -> None:
    """solo5-hvt's PUTS write fails: with SIGPIPE ignored (albatrossd) its
    assert fires, SIGABRT; with the default disposition SIGPIPE. A signal
    either way, which Albatross never restarts, and every block write the
    guest made before the failing console write is on the disk."""
    u = host.create("orphan", tender_on_path(), "write", "200", sigpipe=sigpipe)
    try:
        u.read_until("written 200 10\n")
        seen = u.text
        u.close_console()
        got = u.wait(timeout=30)
    finally:
        u.close_console()
        u.wait()
    assert got == (-signal.SIGABRT if sigpipe == signal.SIG_IGN else -signal.SIGPIPE), got
    assert not should_restart(got, restart_on_fail=True)
    top, k = cut_of(u.block)
    print(f"console closed after sector 10 of pass 200: status {got}, on disk: pass {top} "
          f"up to sector {k}")
    assert top > 200 or k > 10, (top, k, seen[-200:])


def test_console_write_error_aborts(handlers: str, tmp_path: Path) -> None:
    """Spec 4.4 with either PUTS handler: a failed console write (here EPIPE,
    SIGPIPE inherited ignored) is one diagnostic line, then SIGABRT."""
    require_kvm()
    r, w = os.pipe()
    os.close(r)
    err = tmp_path / "err"
    with open(err, "wb") as f, no_core():
        try:
            p = subprocess.run([tender_on_path(), "--mem=64", handlers, guest("hello"),
                                "Hello_Solo5"], stdout=w, stderr=f, restore_signals=False,
                               timeout=60)
        finally:
            os.close(w)
    assert p.returncode == -signal.SIGABRT, err.read_text()
    assert err.read_text() == "solo5-hvt: Fatal error writing to console: Broken pipe\n"
