"""Networking (issue #4): real guests on real KVM, through the real CLI, with
taps in a network namespace of our own.

Every test's traffic stays inside namespace pyt-XXXX (created here, deleted
by the fixture finalizer): the taps, their 10.x addresses and the pings all
live there, and the tender runs there under `ip netns exec`.

Only what needs a real tap is here: pings through the kernel, a tap's MTU,
tap fds from an orchestrator, tap attach errors. Everything else about
networking runs without root over a FramePipe (test_net_pipe.py)."""

from __future__ import annotations

import ctypes
import fcntl
import os
import re
import secrets
import shutil
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from conftest import ROOT, Run, guest, require_kvm, tender_cmd

TAP0, TAP9K = "pyt0", "pyt9k"
HOST0, GUEST0 = "10.77.0.1", "10.77.0.2"
HOST9K, GUEST9K = "10.79.0.1", "10.79.0.2"
HOSTFD, GUESTFD = "10.80.0.1", "10.80.0.2"

# Flood-ping counts, measured on the kvm_pvm development host: the slowest
# mode answers about 700 echoes/s, so each test stays well under 60 s.
FLOOD = 8000


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@dataclass(frozen=True)
class Netns:
    name: str

    def exec(self, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *cmd]

    def tender(self, *args: str, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.exec(*tender_cmd(*args)), cwd=ROOT, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=pass_fds,
        )

    def run_tender(self, *args: str, timeout: float = 60) -> Run:
        proc = subprocess.run(self.exec(*tender_cmd(*args)), cwd=ROOT, capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=timeout)
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def ping(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.exec("ping", *args), capture_output=True, text=True,
                              timeout=timeout)


@pytest.fixture(scope="module")
def netns() -> Iterator[Netns]:
    require_kvm()
    if shutil.which("ip") is None or shutil.which("ping") is None:
        pytest.skip("needs ip (iproute2) and ping (iputils-ping)")
    if os.geteuid() != 0:
        pytest.skip("network namespaces and taps need root")
    ns = Netns(f"pyt-{secrets.token_hex(4)}")
    _ip("netns", "add", ns.name)
    try:
        _ip("-n", ns.name, "link", "set", "lo", "up")
        for tap, addr, mtu in ((TAP0, HOST0, 1500), (TAP9K, HOST9K, 9000)):
            _ip("-n", ns.name, "tuntap", "add", "dev", tap, "mode", "tap")
            _ip("-n", ns.name, "addr", "add", f"{addr}/24", "dev", tap)
            _ip("-n", ns.name, "link", "set", tap, "mtu", str(mtu), "up")
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns.name], capture_output=True)


class Guest:
    """A net guest running in the background; `ready()` waits for it to
    serve, `finish()` collects its exit status and output."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.lines: list[str] = []

    def ready(self, timeout: float = 30) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode(errors="replace")
            if not line:
                break
            self.lines.append(line)
            if line.startswith("NET: serving"):
                return
        self.proc.kill()
        out, err = self.proc.communicate()
        pytest.fail(f"guest never served: {''.join(self.lines)}{out!r}{err!r}")

    def finish(self, timeout: float = 60) -> Run:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return Run(self.proc.returncode, "".join(self.lines).encode() + out, err)


def start(ns: Netns, *args: str, pass_fds: tuple[int, ...] = ()) -> Guest:
    g = Guest(ns.tender(*args, pass_fds=pass_fds))
    g.ready()
    return g


def ring_line(handlers: str) -> str:
    return "NET: ring active" if handlers == "--handlers=native" else "NET: ring inactive"


# --- traffic -----------------------------------------------------------------

def flood_received(ping_out: str, n: int) -> None:
    """ping -f sent n and got (nearly) all back. The guest's own count is
    asserted exactly by each test; on a loaded 2-core host the kernel may
    drop the odd frame between the tap and ping (its backlog is finite, for
    any tender), so ping's count gets a 0.1 % allowance, and upstream's flood
    test likewise judges the guest's count."""
    m = re.search(r"(\d+) packets transmitted, (\d+) received", ping_out)
    assert m is not None, ping_out
    assert int(m[1]) == n and int(m[2]) >= n - max(1, n // 1000), ping_out


def test_flood_ping_limit(netns: Netns, handlers: str) -> None:
    g = start(netns, handlers, f"--net={TAP0}", guest("net"), GUEST0, "limit", str(FLOOD))
    t0 = time.monotonic()
    p = netns.ping("-f", "-q", "-c", str(FLOOD), GUEST0)
    elapsed = time.monotonic() - t0
    r = g.finish()
    assert r.status == 0, r.output
    assert ring_line(handlers) in r.out
    assert f"NET: service0 answered {FLOOD} echo requests\nSUCCESS\n" in r.out
    flood_received(p.stdout, FLOOD)
    print(f"{handlers}: {FLOOD / elapsed:.0f} echoes/s")


def test_mtu_9000_and_jumbo_frames(netns: Netns, handlers: str) -> None:
    # 8000-byte pings: 8042-byte frames, beyond the ring's 2 KiB slots, so
    # the guest writes them with the NET_WRITE hypercall even in ring mode.
    g = start(netns, handlers, f"--net={TAP9K}", guest("net"), GUEST9K, "limit", "20")
    p = netns.ping("-c", "20", "-i", "0.01", "-s", "8000", GUEST9K)
    r = g.finish()
    assert r.status == 0, r.output
    assert " mtu 9000\nMTU is 9000\n" in r.out
    assert "answered 20 echo requests\nSUCCESS\n" in r.out
    assert "20 received" in p.stdout
    assert "8008 bytes from" in p.stdout


# --- @FD: a tap opened by an orchestrator --------------------------------------

_TUNSETIFF = 0x400454CA
_CLONE_NEWNET = 0x40000000


def _open_tap_in(ns: Netns, name: str) -> int:
    """Open (create) tap NAME inside NS from this process: setns() moves only
    the calling thread, so do it in a throwaway thread."""
    libc = ctypes.CDLL(None, use_errno=True)
    result: list[int | BaseException] = []

    def work() -> None:
        try:
            with open(f"/run/netns/{ns.name}", "rb") as nsf:
                if libc.setns(nsf.fileno(), _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            fd = os.open("/dev/net/tun", os.O_RDWR)
            fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH22x", name.encode(), 0x0002 | 0x1000))
            result.append(fd)
        except BaseException as exc:   # reported in the test thread
            result.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


def test_fd_passing(netns: Netns, handlers: str) -> None:
    tap = f"pytfd{handlers[-1]}"
    fd = _open_tap_in(netns, tap)
    try:
        _ip("-n", netns.name, "addr", "add", f"{HOSTFD}/24", "dev", tap)
        _ip("-n", netns.name, "link", "set", tap, "mtu", "4000", "up")
        g = start(netns, handlers, f"--net:service0=@{fd}", guest("net"), GUESTFD,
                  "limit", "200", pass_fds=(fd,))
        p = netns.ping("-f", "-q", "-c", "200", GUESTFD)
        r = g.finish()
    finally:
        os.close(fd)
    assert r.status == 0, r.output
    # The MTU comes from TUNGETIFF + SIOCGIFMTU (upstream cannot do this).
    assert " mtu 4000\nMTU is 4000\n" in r.out
    assert "answered 200 echo requests\nSUCCESS\n" in r.out
    assert "200 received" in p.stdout


# --- option and attach errors --------------------------------------------------

@pytest.mark.parametrize(("iface", "why"), [
    ("pytnosuch", "No such file or directory"),
    ("abcdefghijklmnop", "File name too long"),
    ("pyt%d", "No such file or directory"),
])
def test_attach_errors(netns: Netns, iface: str, why: str) -> None:
    r = netns.run_tender(f"--net:service0={iface}", guest("net"), "info")
    assert r.status == 1
    assert r.err == f"pytender: Could not attach interface: {iface}: {why}\n"
    assert r.stdout == b""


def test_attach_down_and_busy(netns: Netns) -> None:
    _ip("-n", netns.name, "tuntap", "add", "dev", "pytdown", "mode", "tap")
    r = netns.run_tender("--net:service0=pytdown", guest("net"), "info")
    assert (r.status, r.err) == (1, "pytender: Could not attach interface: pytdown: "
                                    "Network is down\n")
    # the same tap twice: the second TUNSETIFF finds it busy
    r = netns.run_tender(f"--net:service0={TAP0}", f"--net:service1={TAP0}",
                         guest("net2"), "info")
    assert (r.status, r.err) == (1, f"pytender: Could not attach interface: {TAP0}: "
                                    "Device or resource busy\n")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
