"""Where the net ring's time goes on this host (issue 10), measured:

1. inside the guest (`net.hvt timing N`, TSC-timed): one loop iteration,
   one nop, a ring kick (inline: a userspace IO exit; thread: an ioeventfd,
   kernel only), a WALLTIME hypercall, a 1400-byte copy;
2. flood-ping minimum rtt and rate for the hypercall path, the ring
   (inline) and the ring without the slot copy (`build/bench/net-nocopy.hvt`, bench
   only: it breaks spec 5.3), at 56 and 1400 bytes, rounds interleaved.

    sudo .venv/bin/python bench/ring_costs.py [COUNT [ROUNDS [TIMING_N]]]

Printed, never asserted. Everything happens in a throwaway netns."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys

from net import GUEST_IP, ROOT, one, tap_netns

CELLS: dict[str, tuple[tuple[list[str], str], str]] = {
    "hypercall": ((["--handlers=native", "--net-ring=off"], ""), "net"),
    "ring inline": ((["--handlers=native"], "inline"), "net"),
    "ring inline, no copy": ((["--handlers=native"], "inline"), "bench/net-nocopy"),
    "ring thread": ((["--handlers=native"], "thread"), "net"),
}


def timing(ns: str, mode: str, n: int) -> dict[str, int]:
    env = {**os.environ, "PYTENDER_RING_MODE": mode}
    r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "tender.cli", "run",
                        "--net=tap0", str(ROOT / "guests" / "build" / "net.hvt"), GUEST_IP,
                        "timing", str(n)], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=600)
    m = re.search(r"TIMING (.*)", r.stdout)
    if m is None:
        sys.exit(f"timing run failed: {r.stdout[-300:]} {r.stderr[-300:]}")
    return {k: int(v) for k, v in (kv.split("=") for kv in m[1].split())}


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 100000
    if os.geteuid() != 0:
        sys.exit("needs root (network namespace, tap)")
    subprocess.run(["make", "-s", "-C", str(ROOT / "guests"), f"PYTHON={sys.executable}",
                    "all", "build/bench/net-nocopy.hvt"], check=True)
    ns = tap_netns("pyt-costs")
    try:
        print(f"1. guest-timed costs, N={n} (load average {os.getloadavg()[0]:.1f})")
        for _ in range(2):
            for mode in ("inline", "thread"):
                t = timing(ns, mode, n)
                print(f"  {mode:<7} " + "  ".join(f"{k}={v / 1000:.2f}us" for k, v in t.items()),
                      flush=True)
        print(f"\n2. flood ping, {count} echoes per cell, {rounds} rounds")
        mins: dict[tuple[str, int], list[float]] = {}
        rates: dict[tuple[str, int], list[float]] = {}
        for _ in range(rounds):
            for size in (56, 1400):
                for name, (mode, guest) in CELLS.items():
                    rate, rtt_min, _ = one(ns, mode, size, count, guest=guest)
                    mins.setdefault((name, size), []).append(rtt_min)
                    rates.setdefault((name, size), []).append(rate)
        print(f"  {'cell':<22} {'bytes':>5} {'median min rtt ms':>18} {'median echoes/s':>16}")
        for size in (56, 1400):
            for name in CELLS:
                print(f"  {name:<22} {size:>5} {statistics.median(mins[(name, size)]):>18.3f} "
                      f"{statistics.median(rates[(name, size)]):>16.0f}")
        for size in (56, 1400):
            hc, ring, nocopy = (statistics.median(mins[(c, size)]) * 1000 for c in (
                "hypercall", "ring inline", "ring inline, no copy"))
            print(f"  {size} B per echo: slot copy {ring - nocopy:.0f} us, rest of the ring "
                  f"protocol {nocopy - hc:.0f} us over the hypercall path")
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


if __name__ == "__main__":
    main()
