"""Live-stats benchmark (issue 12 part 3): how many `Tender.stats()` calls per
second a reader gets while a guest answers a ping flood, and the flood rate
with no reader, with a 10 Hz reader and with a reader spinning on stats(),
all in the same run, for the net ring and the native hypercall path.
Printed, not asserted.

    sudo .venv/bin/python bench/stats.py [COUNT] [ROUNDS]

Everything happens in a throwaway network namespace (deleted at the end):
the script re-runs itself inside it, where the guest runs in-process."""

from __future__ import annotations

import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GUEST = str(ROOT / "guests" / "build" / "net.hvt")
HOST, GUEST_IP = "10.93.0.1", "10.93.0.2"


class Reader(threading.Thread):
    """Calls stats() every `period` seconds (0: as fast as it can)."""

    def __init__(self, tender: object, period: float, noop: bool = False) -> None:
        super().__init__(daemon=True)
        self.tender, self.period, self.noop = tender, period, noop
        self.calls = 0
        self.done = threading.Event()

    def run(self) -> None:
        stats = (lambda: None) if self.noop else self.tender.stats  # type: ignore[attr-defined]
        while not self.done.is_set():
            stats()
            self.calls += 1
            if self.period:
                self.done.wait(self.period)


def flood(count: int) -> float:
    t0 = time.monotonic()
    r = subprocess.run(["ping", "-f", "-q", "-c", str(count), GUEST_IP],
                       capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - t0
    if f"{count} received" not in r.stdout:
        print(f"  (lost echoes: {r.stdout.strip().splitlines()[-2:]})")
    return count / elapsed


def _run(tender: object) -> None:
    from tender.errors import Stopped

    try:
        tender.run()  # type: ignore[attr-defined]
    except Stopped:
        pass        # the bench stops it


def spin_rate(tender: object, seconds: float) -> float:
    reader = Reader(tender, 0)
    reader.start()
    time.sleep(seconds)
    reader.done.set()
    reader.join()
    return reader.calls / seconds


def inner(count: int, rounds: int) -> None:
    from tender import NetSpec, Tender, VmConfig

    for label, ring in (("ring", True), ("hypercall", False)):
        console = Path(f"/tmp/pyt-bench-stats-{os.getpid()}.out")
        fd = os.open(console, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        t = Tender(VmConfig(kernel=GUEST, args=(GUEST_IP.encode(),), mem=64 << 20,
                            nets=(NetSpec("service0", "tap0"),), net_ring=ring),
                   console_fd=fd)
        th = threading.Thread(target=_run, args=(t,), daemon=True)
        th.start()
        while b"NET: serving" not in console.read_bytes():
            time.sleep(0.05)
        flood(200)      # warm-up: ARP, caches
        idle_calls = spin_rate(t, 2.0)
        # "10 Hz no-op" wakes as often as the 10 Hz reader but reads nothing:
        # it separates the cost of stats() from the effect of a waking thread.
        rates: dict[str, list[float]] = {"none": [], "10 Hz": [], "10 Hz no-op": [],
                                         "spin": []}
        spin_calls: list[float] = []
        order = list(rates)
        for i in range(rounds):
            # Interleaved and rotated, so drift and position hit every row alike.
            for row in order[i % 4:] + order[:i % 4]:
                reader = None if row == "none" else Reader(
                    t, 0 if row == "spin" else 0.1, noop=row == "10 Hz no-op")
                if reader is not None:
                    reader.start()
                t0 = time.monotonic()
                rates[row].append(flood(count))
                if reader is not None:
                    reader.done.set()
                    reader.join()
                    if row == "spin":
                        spin_calls.append(reader.calls / (time.monotonic() - t0))
        t.stop()
        th.join(30)
        os.close(fd)
        console.unlink()
        base = statistics.median(rates["none"])
        print(f"{label}: flood ping, {count} echoes x {rounds} rounds (median echoes/s)")
        for row, vals in rates.items():
            med = statistics.median(vals)
            print(f"  reader {row:<11} {med:>8.0f} echoes/s  x{med / base:.3f} vs no reader")
        print(f"  stats() calls/s: {statistics.median(spin_calls):.0f} while flooding, "
              f"{idle_calls:.0f} with the guest idle (same run)")
        s = t.stats()
        dev = s.devices["service0"]
        print(f"  final: rx {dev.rx_packets} tx {dev.tx_packets} drops {dev.drops} "
              f"ring_kicks {s.ring_kicks}")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    if os.environ.get("PYT_BENCH_INNER") == "1":
        inner(count, rounds)
        return
    if os.geteuid() != 0:
        sys.exit("needs root (network namespace, tap)")
    subprocess.run(["make", "-s", "-C", str(ROOT / "guests"), f"PYTHON={sys.executable}"],
                   check=True)
    ns = f"pyt-bench-metrics-{secrets.token_hex(3)}"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    ip("netns", "add", ns)
    try:
        ip("-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap")
        ip("-n", ns, "addr", "add", f"{HOST}/24", "dev", "tap0")
        ip("-n", ns, "link", "set", "tap0", "up")
        subprocess.run(["ip", "netns", "exec", ns, sys.executable, __file__, str(count),
                        str(rounds)], check=True, env={**os.environ, "PYT_BENCH_INNER": "1"})
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


if __name__ == "__main__":
    main()
