"""urunc's monitor root, built for real (issue 12 part 1, ORCHESTRATORS.md 1.6).

`pytender install-monitor` writes a tender under /usr/lib; tests/urunc_root.py
runs it as urunc does: a root with only that file, /lib, /lib64, /usr/lib
(read-only), a tmpfs /dev with kvm, net/tun, null and urandom, a noexec
/tmp and /proc; PID 1 of a new PID namespace; uid 65534 with no groups.
There is no /usr/bin in that root, so the interpreter must be the one the
install put under /usr/lib."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Run, guest, require_kvm
from test_block import image, sectors_hold_pattern
from test_signals import _wait_blocked

HARNESS = Path(__file__).with_name("urunc_root.py")
DEBIAN_PYTHON = Path("/usr/bin/python3.11")
UID = GID = 65534       # nobody/nogroup, as in urunc's UserGroup e2e test
MEM = "--mem=268"       # urunc's default: 256 * 2**20 bytes / 10**6
TAP = "tap0_urunc"      # urunc's tap name
HOST_IP, GUEST_IP = "10.91.0.1", "10.91.0.2"
GUEST_MAC = "02:42:0a:5b:00:02"


def _need_root_and_python() -> None:
    require_kvm()
    if os.geteuid() != 0:
        pytest.skip("mount namespaces and chroot need root")
    if not DEBIAN_PYTHON.exists():
        pytest.skip(f"{DEBIAN_PYTHON} missing (apt-get install python3.11)")
    if sys.implementation.cache_tag != "cpython-311":
        pytest.skip("the extensions to copy are built for this interpreter, not 3.11")


@pytest.fixture(scope="module")
def monitor() -> Iterator[Path]:
    """DIR under /usr/lib, as the README tells users; removed afterwards."""
    _need_root_and_python()
    prefix = Path(f"/usr/lib/pytender-test-{secrets.token_hex(4)}")
    try:
        r = subprocess.run([str(Path(sys.executable).parent / "pytender"), "install-monitor",
                            "--prefix", str(prefix)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert r.stdout == f"{prefix}/solo5-hvt\n"
        yield prefix / "solo5-hvt"
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The container's rootfs: the unikernels, readable by the container uid."""
    fs = tmp_path_factory.mktemp("rootfs")
    for name in ("hello", "exit", "blk", "net", "time"):
        shutil.copy(guest(name), fs / f"{name}.hvt")
        (fs / f"{name}.hvt").chmod(0o644)
    fs.chmod(0o755)
    return fs


@dataclass(frozen=True)
class Container:
    root: Path
    pidfile: Path
    rootfs: Path

    def cmd(self, tender: Path, *args: str, disk: str | None = None,
            tty: bool = False) -> list[str]:
        extra = (["--disk", disk] if disk is not None else []) + (["--tty"] if tty else [])
        return [sys.executable, str(HARNESS), "--root", str(self.root), "--pidfile",
                str(self.pidfile), "--uid", str(UID), "--gid", str(GID),
                "--rootfs", str(self.rootfs), *extra, "--", str(tender), *args]

    def run(self, tender: Path, *args: str, disk: str | None = None,
            netns: str | None = None, tty: bool = False) -> Run:
        cmd = self.cmd(tender, *args, disk=disk, tty=tty)
        if netns is not None:
            cmd = ["ip", "netns", "exec", netns, *cmd]
        p = subprocess.run(cmd, capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
        return Run(p.returncode, p.stdout, p.stderr)

    def pid(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while not self.pidfile.exists():
            assert time.monotonic() < deadline, "the container never started"
            time.sleep(0.01)
        return int(self.pidfile.read_text())


@pytest.fixture
def container(tmp_path: Path, rootfs: Path) -> Container:
    (tmp_path / "root").mkdir()
    return Container(tmp_path / "root", tmp_path / "pid", rootfs)


def _cmdline(out: str) -> str:
    m = re.search(r'cmdline="(.*)"', out)
    assert m, out
    return m.group(1)


def test_install_monitor_layout(monitor: Path) -> None:
    prefix = monitor.parent
    assert monitor.read_bytes()[:4] == b"\x7fELF"
    assert (prefix / "python").read_bytes() == DEBIAN_PYTHON.resolve().read_bytes()
    sources = list((prefix / "lib").rglob("*.py"))
    assert any(p.name == "vm.py" for p in sources)
    assert list((prefix / "lib" / "tender").glob("_vcpu*.so"))
    assert list((prefix / "lib").glob("_cffi_backend*.so"))
    for py in sources:      # read-only mounts: every module pre-compiled
        assert (py.parent / "__pycache__" / f"{py.stem}.cpython-311.pyc").exists(), py
    # `--version` as today (no root needed for it).
    ours = subprocess.run([str(monitor), "--version"], capture_output=True)
    venv = subprocess.run([str(Path(sys.executable).parent / "solo5-hvt"), "--version"],
                          capture_output=True)
    assert (ours.returncode, ours.stdout, ours.stderr) == (0, b"", venv.stderr)


def test_install_monitor_bad_input(tmp_path: Path) -> None:
    exe = str(Path(sys.executable).parent / "pytender")
    for args, msg in ((["--prefix"], "needs a value"), ([], "--prefix DIR is required"),
                      (["--prefix", "rel"], "absolute"), (["--bogus"], "unknown argument"),
                      (["--prefix", str(tmp_path), "--python", "/nonexistent"],
                       "no such interpreter")):
        r = subprocess.run([exe, "install-monitor", *args], capture_output=True, text=True)
        assert r.returncode == 1, (args, r.stderr)
        assert r.stderr.startswith("pytender: install-monitor: ") and msg in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    (tmp_path / "x").write_text("not a monitor")
    r = subprocess.run([exe, "install-monitor", "--prefix", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "is not a pytender monitor" in r.stderr, r.stderr
    assert (tmp_path / "x").read_text() == "not a monitor"


def test_install_monitor_sigterm_keeps_the_old_install(tmp_path: Path) -> None:
    if not DEBIAN_PYTHON.exists() or sys.implementation.cache_tag != "cpython-311":
        pytest.skip(f"needs {DEBIAN_PYTHON} and a 3.11 pytender")
    exe = str(Path(sys.executable).parent / "pytender")
    prefix = tmp_path / "mon"
    start = time.monotonic()
    subprocess.run([exe, "install-monitor", "--prefix", str(prefix)], check=True,
                   capture_output=True)
    took = time.monotonic() - start
    signalled = 0
    # Early, middle and late in an install; a signal after the process ended
    # tests nothing, so such a round is not counted.
    for delay in (0.0, 0.3 * took, 0.6 * took):
        proc = subprocess.Popen([exe, "install-monitor", "--prefix", str(prefix)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _wait_blocked(proc.pid)   # the launcher's first instructions
        time.sleep(delay)
        if proc.poll() is not None:
            continue
        proc.send_signal(signal.SIGTERM)
        signalled += 1
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, err
        assert err == b"pytender: Exiting on signal 15\n", err
        v = subprocess.run([str(prefix / "solo5-hvt"), "--version"], capture_output=True)
        assert v.returncode == 0 and b"ABI version 2" in v.stderr, v
        assert not list(tmp_path.glob(".mon.new-*"))
    assert signalled >= 2, "the installs ended before they could be signalled"


def test_version_in_the_root(monitor: Path, container: Container) -> None:
    r = container.run(monitor, "--version")
    assert (r.status, r.err.splitlines()[-1:]) == (0, ["ABI version 2"]), r.output


def test_hello_2026_shape(monitor: Path, container: Container) -> None:
    r = container.run(monitor, MEM, "--", "/rootfs/hello.hvt", "Hello_Solo5")
    assert r.status == 0, r.output
    assert "Hello, World" in r.out and "SUCCESS" in r.out, r.output
    assert "mem=0x10c00000" in r.out    # 268 MiB


def test_hello_on_a_terminal(monitor: Path, container: Container) -> None:
    """process.terminal: stdin is a PTY the tender must never read."""
    r = container.run(monitor, MEM, "--", "/rootfs/hello.hvt", "Hello_Solo5", tty=True)
    assert r.status == 0, r.output
    assert "**** Hello, World ****\r\n" in r.out and "SUCCESS" in r.out, r.output


def test_empty_trailing_args_2025_shape(monitor: Path, container: Container) -> None:
    """urunc-2025: no `--`, the string split on single spaces, so an empty
    command leaves "" elements after the kernel."""
    r = container.run(monitor, MEM, "/rootfs/exit.hvt", "0", "", "")
    assert r.status == 0, r.output
    assert _cmdline(r.out) == "0  "


def test_block_guest_command_as_one_element(monitor: Path, container: Container,
                                            tmp_path: Path) -> None:
    disk = image(tmp_path / "disk.img", 32 * 512)
    os.chown(disk, UID, GID)
    r = container.run(monitor, MEM, "--block:storage=/data/disk.img", "--",
                      "/rootfs/blk.hvt", "write 29", disk=disk)
    assert r.status == 0, r.output
    assert _cmdline(r.out) == "write 29"
    sectors_hold_pattern(disk, 512, 29)


@pytest.fixture
def netns() -> Iterator[str]:
    """A namespace of our own with urunc's tap: persistent, single queue,
    IFF_VNET_HDR, owned by the container uid/gid."""
    if shutil.which("ip") is None or shutil.which("ping") is None:
        pytest.skip("needs ip (iproute2) and ping (iputils-ping)")
    name = f"urunc-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for args in (["link", "set", "lo", "up"],
                     ["tuntap", "add", "dev", TAP, "mode", "tap", "vnet_hdr",
                      "user", str(UID), "group", str(GID)],
                     ["addr", "add", f"{HOST_IP}/24", "dev", TAP],
                     ["link", "set", TAP, "up"]):
            subprocess.run(["ip", "-n", name, *args], check=True, capture_output=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


# urunc-2026 (`--net-mac`, `--`, the command as one element) and urunc-2025
# (no MAC: a random one from /dev/urandom; no `--`; the string split on spaces).
NET_SHAPES = {
    "2026": (f"--net:service0={TAP}", f"--net-mac:service0={GUEST_MAC}", "--",
             "/rootfs/net.hvt", f"{GUEST_IP} limit 4"),
    "2025": (f"--net:service0={TAP}", "/rootfs/net.hvt", GUEST_IP, "limit", "4"),
}


@pytest.mark.parametrize("shape", sorted(NET_SHAPES))
def test_net_guest_on_urunc_tap(monitor: Path, container: Container, netns: str,
                                shape: str) -> None:
    detail = subprocess.run(["ip", "-n", netns, "-d", "link", "show", TAP],
                            capture_output=True, text=True, check=True).stdout
    assert "vnet_hdr on" in detail and "persist on" in detail, detail
    assert f"user {UID}" in detail or "user nobody" in detail, detail
    cmd = ["ip", "netns", "exec", netns, *container.cmd(monitor, MEM, *NET_SHAPES[shape])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        lines = []
        for raw in proc.stdout:
            lines.append(raw.decode(errors="replace"))
            if raw.startswith(b"NET: serving"):
                break
        ping = subprocess.run(["ip", "netns", "exec", netns, "ping", "-c", "3", "-i", "0.2",
                               "-W", "5", GUEST_IP], capture_output=True, text=True, timeout=60)
        # Before the guest exits: closing the tap drops the neighbour entry.
        neigh = subprocess.run(["ip", "-n", netns, "neigh", "show", GUEST_IP, "dev", TAP],
                               capture_output=True, text=True).stdout
        subprocess.run(["ip", "netns", "exec", netns, "ping", "-c", "1", "-W", "5", GUEST_IP],
                       capture_output=True, timeout=60)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    text = "".join(lines) + out.decode(errors="replace")
    assert ping.returncode == 0, (ping.stdout, text, err)
    assert proc.returncode == 0, (text, err)
    assert "SUCCESS" in text, text
    if shape == "2026":
        assert GUEST_MAC in neigh, neigh
    else:   # random, unicast, locally administered
        mac = neigh.split("lladdr ")[1].split()[0]
        assert mac != GUEST_MAC and int(mac[:2], 16) & 3 == 2, neigh


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def test_pid1_seccomp_and_sigterm(monitor: Path, container: Container) -> None:
    proc = subprocess.Popen(container.cmd(monitor, MEM, "/rootfs/time.hvt"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        pid = container.pid()
        assert proc.stdout is not None
        assert b"GUEST" in proc.stdout.readline()
        assert proc.stdout.readline().startswith(b"time:")    # in the vCPU loop now
        # The interpreter the install put under /usr/lib (there is no other).
        # (seen from the host, so below the root's mount point)
        exe = os.readlink(f"/proc/{pid}/exe")
        assert exe == f"{container.root}{monitor.parent}/python", exe
        status = _status(pid)
        assert status["NSpid"].split()[-1] == "1", status    # PID 1 of its namespace
        assert status["Seccomp"] == "2", status
        assert status["Uid"].split() == [str(UID)] * 4 and status["Groups"] == "", status
        t0 = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err
    assert err.decode().count("Exiting on signal 15") == 1, err
    assert err.endswith(f"{monitor.name}: Exiting on signal 15\n".encode()), err
    assert took < 10, took
    print(f"SIGTERM to PID 1 -> exit 1 in {took:.3f} s")


def test_no_interpreter_outside_the_root(container: Container, tmp_path: Path) -> None:
    """The root really is urunc's: a #! script (what pip used to install)
    cannot start there, which is why the monitor exists."""
    _need_root_and_python()
    script = Path(f"/usr/lib/pytender-test-{secrets.token_hex(4)}.py")
    script.write_text(f"#!{DEBIAN_PYTHON}\nprint('started')\n")
    script.chmod(0o755)
    try:
        r = container.run(script)
    finally:
        script.unlink()
    assert r.status == 127 and "No such file or directory" in r.err, r.output
