"""Echo round trips per second through a FramePipe vs a tap, same run, same
Python peer (issue #8). Printed, not asserted.

    sudo .venv/bin/python bench/pipe_vs_tap.py [--count N] [--rounds R]

The guest is guests/build/net.hvt (`IP limit N`). The peer is the
conformance suite's (tender.conformance.peer.drive): ARP, then N ICMP echo
requests, each waiting for its reply. On the pipe side it talks to a
FramePipe the tender attaches as --net:service0=@FD; on the tap side to an
AF_PACKET socket on the tap's host end, in a throwaway network namespace
(no address on the tap, IPv6 off, so the kernel sends nothing of its own).
Both tenders start the same way (the CLI, `python -m tender.cli run`);
only the transport differs. Cells are interleaved round by round and the
median is printed, with pipe/tap as the ratio."""

from __future__ import annotations

import argparse
import fcntl
import os
import secrets
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tender.conformance.model import Echo  # noqa: E402
from tender.conformance.peer import HOST_MAC, FrameEnd, drive  # noqa: E402
from tender.devices import FramePipe  # noqa: E402

GUEST = str(ROOT / "guests" / "build" / "net.hvt")
GUEST_IP = "10.0.0.2"
MODES = {
    "ring": ["--handlers=native"],
    "hypercall": ["--handlers=native", "--net-ring=off"],
    "python": ["--handlers=python"],
}
_ETH_P_ALL = 0x0003
_PACKET_OUTGOING = 4
CELL_TIMEOUT = 60.0
PIN = "--pin" in sys.argv
_TUNSETIFF = 0x400454CA
_IFF_TAP_NO_PI = 0x0002 | 0x1000


class TapEnd:
    """A raw socket on the host side of a tap: what the guest writes to the
    tap arrives here, what is sent here goes to the guest."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, frame: bytes) -> None:
        self.sock.send(frame)

    def recv(self, timeout: float | None = None) -> bytes | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self.sock], [], [], left)[0]:
                return None
            frame, addr = self.sock.recvfrom(65536)
            if addr[2] != _PACKET_OUTGOING:     # not our own sends echoed back
                return frame


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, all its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one(opts: list[str], end: FrameEnd, count: int,
        pass_fds: tuple[int, ...] = ()) -> tuple[float, float]:
    """(echo round trips per second, tender CPU microseconds per round trip)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tender.cli", "run", *opts, GUEST, GUEST_IP,
         "limit", str(count)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        pass_fds=pass_fds)
    if PIN:
        # the tender on CPU 0 (its later threads inherit it), the peer on CPU 1
        os.sched_setaffinity(proc.pid, {0})
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(b"NET: serving"):
            break
    c0 = _cpu_seconds(proc.pid)
    t0 = time.monotonic()
    problem = drive(end, Echo(GUEST_IP, count), CELL_TIMEOUT)
    elapsed = time.monotonic() - t0
    if problem:
        proc.kill()
    assert proc.stderr is not None
    proc.stdout.read()
    err = proc.stderr.read()
    # wait4: the CPU time of the whole run, read once the tender has exited
    # (it exits right after the last reply, so /proc may be gone already).
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu_us = (usage.ru_utime + usage.ru_stime - c0) * 1e6 / count
    if problem or proc.returncode != 0:
        raise SystemExit(f"run failed: {problem} (exit {proc.returncode}) {err.decode()}")
    return count / elapsed, cpu_us


def pipe_rate(opts: list[str], count: int) -> tuple[float, float]:
    pipe = FramePipe()
    try:
        fd = pipe.guest_fileno()
        return one([*opts, f"--net:service0=@{fd}"], pipe, count, (fd,))
    finally:
        pipe.close()


def _transport_floor(count: int, raw: socket.socket, chunks: int = 40) -> tuple[float, float]:
    """Microseconds per round trip of the transports alone, no tender and no
    guest: one thread plays both ends (guest end write -> peer read -> peer
    write -> guest end read) with a 98-byte echo-sized frame, in alternating
    chunks so that load drift hits both alike. Fastest chunk (the least
    disturbed by other work on the host): (pipe, tap)."""
    frame = bytes(6) + HOST_MAC + b"\x08\x00" + bytes(84)
    pipe = FramePipe()
    guest_end = socket.socket(fileno=os.dup(pipe.guest_fileno()))
    guest_end.setblocking(True)
    tap_fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(tap_fd, _TUNSETIFF, struct.pack("16sH22x", b"tap0", _IFF_TAP_NO_PI))
    tap = TapEnd(raw)
    per = max(1, count // chunks)
    pipe_us: list[float] = []
    tap_us: list[float] = []
    try:
        for _ in range(chunks):
            t0 = time.perf_counter()
            for _ in range(per):
                guest_end.send(frame)
                pipe.send(pipe.recv(5) or b"")
                guest_end.recv(65536)
            t1 = time.perf_counter()
            for _ in range(per):
                os.write(tap_fd, frame)
                tap.send(tap.recv(5) or b"")
                os.read(tap_fd, 65536)
            t2 = time.perf_counter()
            pipe_us.append((t1 - t0) * 1e6 / per)
            tap_us.append((t2 - t1) * 1e6 / per)
    finally:
        os.close(tap_fd)
        guest_end.close()
        pipe.close()
    return min(pipe_us), min(tap_us)


def measure(count: int, rounds: int) -> None:
    """Inside the namespace: tap0 exists and is up."""
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
    raw.bind(("tap0", 0))
    tap = TapEnd(raw)
    rates: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for r in range(rounds):
        for name, opts in MODES.items():
            cells = {"pipe": lambda o=opts: pipe_rate(o, count),
                     "tap": lambda o=opts: one([*o, "--net:service0=tap0"], tap, count)}
            # pipe first in even rounds, tap first in odd ones: drift in the
            # host's load during a round hits both transports alike
            for kind in ("pipe", "tap") if r % 2 == 0 else ("tap", "pipe"):
                rates.setdefault((name, kind), []).append(cells[kind]())
    floor_pipe, floor_tap = _transport_floor(20 * count, raw)
    raw.close()
    print(f"echo round trips, {count} per cell, median of {rounds} rounds "
          "(same Python peer on both); load average at the end: "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'':<10} {'round trips/s, median':>31} {'pipe':>7}   {'best round':>20}   "
          f"{'tender CPU us/round trip':>31}")
    print(f"{'mode':<10} {'FramePipe':>10} {'tap':>10} {'pipe/tap':>9} {'faster':>7}   "
          f"{'pipe':>6} {'tap':>6} {'ratio':>6}   {'FramePipe':>10} {'tap':>10} {'pipe/tap':>9}")
    for name in MODES:
        pipe, tap_ = rates[(name, "pipe")], rates[(name, "tap")]
        p, pc = (statistics.median(x) for x in zip(*pipe, strict=True))
        t, tc = (statistics.median(x) for x in zip(*tap_, strict=True))
        bp, bt = max(x[0] for x in pipe), max(x[0] for x in tap_)
        # rounds in which the pipe beat the tap (cells of a round run back to back)
        wins = sum(a[0] > b[0] for a, b in zip(pipe, tap_, strict=True))
        print(f"{name:<10} {p:>10.0f} {t:>10.0f} {p / t:>8.2f}x {wins:>3}/{rounds:<3}   "
              f"{bp:>6.0f} {bt:>6.0f} {bp / bt:>5.2f}x   "
              f"{pc:>10.0f} {tc:>10.0f} {pc / tc:>8.2f}x")
    print(f"{'transport alone (no tender, no guest), us/round trip:':<55} "
          f"FramePipe {floor_pipe:.1f}, tap {floor_tap:.1f} ({floor_pipe / floor_tap:.2f}x)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=3000, help="echoes per cell")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pin", action="store_true",
                    help="tender on CPU 0, peer on CPU 1 (no wake-affine sharing)")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.inside:
        if a.pin:
            os.sched_setaffinity(0, {1})
        measure(a.count, a.rounds)
        return
    if os.geteuid() != 0:
        sys.exit("needs root (network namespace, tap)")
    # SIGTERM unwinds too, so the namespace is always deleted.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    subprocess.run(["make", "-s", "-C", str(ROOT / "guests"), f"PYTHON={sys.executable}"],
                   check=True)
    ns = f"pyt-pvt-{secrets.token_hex(3)}"
    ip = ["ip", "-n", ns]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        inside = ["ip", "netns", "exec", ns]
        for key in ("all", "default"):
            subprocess.run([*inside, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1"],
                           check=True)
        subprocess.run([*ip, "tuntap", "add", "dev", "tap0", "mode", "tap"], check=True)
        subprocess.run([*ip, "link", "set", "tap0", "up"], check=True)
        # The whole measurement runs in the namespace: the raw socket on
        # the tap, both tenders and the pipe (which no namespace affects).
        subprocess.run([*inside, sys.executable, __file__, "--inside", "--count",
                        str(a.count), "--rounds", str(a.rounds), *(["--pin"] if a.pin else [])],
                       check=True)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


if __name__ == "__main__":
    main()
