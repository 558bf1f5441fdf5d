"""Net benchmark (issue #4): flood-ping round trips per second and rtt, at 56
and 1400 bytes of payload, for the ring, the native hypercall path and the
Python reference handlers, all in the same run. Printed, not asserted.

    sudo python3 bench/net.py [COUNT [ROUNDS]] [--before DIR]

`--before DIR` adds the ring and hypercall cells of another checkout (its
own .venv and guest), interleaved with these, for before/after figures.

Everything happens in a throwaway network namespace (deleted at the end)."""

from __future__ import annotations

import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tender.devices.ring import ring_mode

ROOT = Path(__file__).resolve().parent.parent
HOST, GUEST_IP = "10.77.0.1", "10.77.0.2"
# (tender options, PYTENDER_RING_MODE); "ring" serves it the default way,
# "ring auto" offers it only where the host is not detected to make it
# cost more than it saves (tender/kvm/assist.py).
MODES: dict[str, tuple[list[str], str]] = {
    "ring": (["--handlers=native"], ""),
    "ring thread": (["--handlers=native"], "thread"),
    "ring inline": (["--handlers=native"], "inline"),
    "ring auto": (["--handlers=native", "--net-ring=auto"], ""),
    "hypercall": (["--handlers=native", "--net-ring=off"], ""),
    "python": (["--handlers=python"], ""),
}
BEFORE_MODES = ("ring", "hypercall")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def tap_netns(prefix: str) -> str:
    """A new netns (PREFIX-random) holding tap0 at HOST/24, up; the caller
    deletes it (`ip netns del`)."""
    ns = f"{prefix}-{secrets.token_hex(3)}"
    ip("netns", "add", ns)
    try:
        ip("-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap")
        ip("-n", ns, "addr", "add", f"{HOST}/24", "dev", "tap0")
        ip("-n", ns, "link", "set", "tap0", "up")
    except BaseException:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        raise
    return ns


def checkout_python(root: Path) -> str:
    py = root / ".venv" / "bin" / "python"
    return str(py) if py.exists() else sys.executable


def one(ns: str, mode: tuple[list[str], str], size: int,
        count: int, root: Path = ROOT, guest: str = "net") -> tuple[float, float, str]:
    exe = ["ip", "netns", "exec", ns]
    opts, ring_mode = mode
    env = {k: v for k, v in os.environ.items() if k != "PYTENDER_RING_MODE"}
    if ring_mode:
        env["PYTENDER_RING_MODE"] = ring_mode
    python = sys.executable if root == ROOT else checkout_python(root)
    tender = subprocess.Popen(
        [*exe, python, "-m", "tender.cli", "run", *opts, "--net=tap0",
         str(root / "guests" / "build" / f"{guest}.hvt"), GUEST_IP, "limit", str(count)],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env=env,
    )
    assert tender.stdout is not None
    for line in tender.stdout:
        if line.startswith(b"NET: serving"):
            break
    t0 = time.monotonic()
    ping = subprocess.run([*exe, "ping", "-f", "-q", "-c", str(count), "-s", str(size),
                           GUEST_IP], capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - t0
    try:
        tender.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        # A lost echo leaves the guest short of its limit: stop it, keep the figures.
        tender.terminate()
        tender.communicate(timeout=30)
    m = re.search(r"rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/([\d.]+)", ping.stdout)
    rtt = (f"{m[1]} ms min, {m[2]} ms avg, {m[3]} ms max" if m
           else f"? ({ping.stderr.strip()[-80:]})")
    rtt_min = float(m[1]) if m else float("nan")
    lost = re.search(r"(\d+)% packet loss", ping.stdout)
    if lost and lost[1] != "0":
        rtt += f", {lost[1]}% lost"
    if tender.returncode != 0:
        rtt += f" (guest exit {tender.returncode})"
    return count / elapsed, rtt_min, rtt


def main() -> None:
    argv = sys.argv[1:]
    before: Path | None = None
    if "--before" in argv:
        i = argv.index("--before")
        before = Path(argv[i + 1]).resolve()
        del argv[i:i + 2]
    count = int(argv[0]) if argv else 5000
    rounds = int(argv[1]) if len(argv) > 1 else 3
    if os.geteuid() != 0:
        sys.exit("needs root (network namespace, tap)")
    subprocess.run(["make", "-s", "-C", str(ROOT / "guests")], check=True)
    cells: dict[str, tuple[tuple[list[str], str], Path]] = {
        name: (mode, ROOT) for name, mode in MODES.items()}
    if before is not None:
        subprocess.run(["make", "-s", "-C", str(before / "guests"),
                        f"PYTHON={checkout_python(before)}"], check=True)
        cells |= {f"before {name}": (MODES[name], before) for name in BEFORE_MODES}
    ns = tap_netns("pyt-bench")
    try:
        print(f"flood ping, {count} echoes per cell, {rounds} rounds (cells interleaved; "
              f"default ring mode here: {ring_mode()}, {len(os.sched_getaffinity(0))} cpus)")
        rates: dict[tuple[str, int], list[float]] = {}
        mins: dict[tuple[str, int], list[float]] = {}
        if before is not None:
            print(f"before: {before}")
        names = list(cells)
        for rnd in range(rounds):
            # Rotated each round, so no cell always follows the same one.
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for size in (56, 1400):
                for name in order:
                    mode, root = cells[name]
                    rate, rtt_min, rtt = one(ns, mode, size, count, root)
                    rates.setdefault((name, size), []).append(rate)
                    mins.setdefault((name, size), []).append(rtt_min)
                    print(f"  round {rnd + 1}: {name:<16} {size:>5} {rate:>7.0f}/s  {rtt}",
                          flush=True)
        # The rate follows the host's load; the minimum rtt is closer to what
        # one echo costs the tender (nothing else scheduled in between).
        print(f"\n{'mode':<16} {'bytes':>5} {'median echoes/s':>16} {'vs hypercall':>13} "
              f"{'median min rtt ms':>18} {'vs hypercall':>13}")
        for size in (56, 1400):
            base = statistics.median(rates[("hypercall", size)])
            base_min = statistics.median(mins[("hypercall", size)])
            for name in names:
                med = statistics.median(rates[(name, size)])
                mn = statistics.median(mins[(name, size)])
                print(f"{name:<16} {size:>5} {med:>16.0f} {med / base:>12.2f}x "
                      f"{mn:>18.3f} {mn / base_min:>12.2f}x")
        # The issue-10 target: ring / hypercall echoes/s, >= 1.00 at both sizes.
        print()
        def ratio(name: str, size: int) -> float:
            med = statistics.median(rates[(name, size)])
            return med / statistics.median(rates[("hypercall", size)])

        for name in ("ring", "ring auto"):
            ratios = ", ".join(f"{size} B {ratio(name, size):.2f}x" for size in (56, 1400))
            print(f"{name} / hypercall (median echoes/s, same run): {ratios}")
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


if __name__ == "__main__":
    main()
