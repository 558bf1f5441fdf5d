"""Warm start: `Tender(cfg).run()` of hello, again and again, in one library
process (started by bench/boot; prints one JSON line, asserts nothing).

    python bench/warm.py --runs N --threads T --mem MIB

Each of T threads runs its own Tender N times; the first run of each thread
is reported apart (it pays for the lazy imports and the cffi module)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tender import Tender, VmConfig

HELLO = Path(__file__).resolve().parent.parent / "guests" / "build" / "hello.hvt"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mem", type=int, default=512, help="MiB")
    args = ap.parse_args()
    cfg = VmConfig(kernel=str(HELLO), args=(b"Hello_Solo5",), mem=args.mem << 20)
    devnull = os.open(os.devnull, os.O_WRONLY)
    first: list[float] = []
    later: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(args.threads)

    def worker() -> None:
        mine: list[float] = []
        start.wait()
        for _ in range(args.runs):
            t0 = time.perf_counter_ns()
            try:
                status = Tender(cfg, console_fd=devnull).run().status
            except Exception as exc:   # reported, never raised: a bench prints
                status = -1
                with lock:
                    failures.append(f"{type(exc).__name__}: {exc}")
            mine.append((time.perf_counter_ns() - t0) / 1e6)
            if status != 0:
                with lock:
                    failures.append(f"status {status}")
        with lock:
            first.append(mine[0])
            later.extend(mine[1:])

    threads = [threading.Thread(target=worker) for _ in range(args.threads)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    json.dump({"first_ms": first, "later_ms": later, "wall_s": wall,
               "boots": args.runs * args.threads, "failures": failures[:5]}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
