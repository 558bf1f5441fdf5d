"""Net benchmark (issue #4): flood-ping round trips per second and rtt, at 56
and 1400 bytes of payload, for the ring, the native hypercall path and the
Python reference handlers, all in the same run. Printed, not asserted.

    sudo python3 bench/net.py [COUNT]

Everything happens in a throwaway network namespace (deleted at the end)."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUEST = str(ROOT / "guests" / "build" / "net.hvt")
HOST, GUEST_IP = "10.77.0.1", "10.77.0.2"
MODES = {
    "ring": ["--handlers=native"],
    "hypercall": ["--handlers=native", "--net-ring=off"],
    "python": ["--handlers=python"],
}


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def one(ns: str, mode: list[str], size: int, count: int) -> tuple[float, str]:
    exe = ["ip", "netns", "exec", ns]
    tender = subprocess.Popen(
        [*exe, sys.executable, "-m", "tender.cli", "run", *mode, "--net=tap0", GUEST,
         GUEST_IP, "limit", str(count)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    assert tender.stdout is not None
    for line in tender.stdout:
        if line.startswith(b"NET: serving"):
            break
    t0 = time.monotonic()
    ping = subprocess.run([*exe, "ping", "-f", "-q", "-c", str(count), "-s", str(size),
                           GUEST_IP], capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - t0
    tender.communicate(timeout=60)
    m = re.search(r"rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/([\d.]+)", ping.stdout)
    rtt = f"{m[2]} ms avg, {m[3]} ms max" if m else "?"
    if tender.returncode != 0:
        rtt += f" (guest exit {tender.returncode})"
    return count / elapsed, rtt


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    if os.geteuid() != 0:
        sys.exit("needs root (network namespace, tap)")
    subprocess.run(["make", "-s", "-C", str(ROOT / "guests")], check=True)
    ns = f"pyt-bench-{secrets.token_hex(3)}"
    ip("netns", "add", ns)
    try:
        ip("-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap")
        ip("-n", ns, "addr", "add", f"{HOST}/24", "dev", "tap0")
        ip("-n", ns, "link", "set", "tap0", "up")
        print(f"flood ping, {count} echoes per cell")
        print(f"{'mode':<10} {'bytes':>5} {'echoes/s':>9}  rtt")
        base: dict[int, float] = {}
        for size in (56, 1400):
            for name, mode in MODES.items():
                rate, rtt = one(ns, mode, size, count)
                base.setdefault(size, rate)
                print(f"{name:<10} {size:>5} {rate:>9.0f}  {rtt}  "
                      f"(x{rate / base[size]:.2f} vs ring)", flush=True)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


if __name__ == "__main__":
    main()
