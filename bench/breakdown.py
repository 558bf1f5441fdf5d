"""Where a cold boot's time and memory go: the same `-I -S` start measured
in layers, interleaved round by round (bench/boot's launcher-like row, cut
up). Printed, never asserted.

    python bench/breakdown.py [--rounds N] [--mem MIB] [--before DIR]

Rows: the C floor (`floor -x`), `python -I -S -c pass`, + the standard
library modules the tender imports, + the tender's own imports, + a whole
hello run; with --before, the last two for another checkout too (built:
`python setup.py build_ext --inplace` there). Peak RSS: median of 3 runs
under /usr/bin/time."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "guests" / "build" / "hello.hvt"
# What a hello boot imports from the standard library (tender.record,
# TYPE_CHECKING = False and _thread keep dataclasses, typing, threading and
# contextlib off it).
STDLIB = ("re, enum, signal, functools, weakref, mmap, struct, select, fcntl, errno, gc, "
          "_thread, _cffi_backend")
WARMUP = 2


def _path(root: Path, site: str) -> str:
    return f"import sys; sys.path[:0] = [{str(root)!r}, {site!r}]; "


def cases(py: str, site: str, floor: str, mem: int, cache: Path,
          before: Path | None) -> dict[str, list[str]]:
    x = [py, "-I", "-S", "-X", f"pycache_prefix={cache}", "-c"]
    imports = ("import tender.cli, tender.vm, tender.kvm, tender.kvm.setup, tender._vcpu, "
               "tender.sandbox")
    run = "from tender.cli import launched; launched()"
    args = ["pytender-hvt", f"--mem={mem}", str(HELLO), "Hello_Solo5"]
    out = {
        "C floor -x": [floor, "-x", "-m", str(mem), str(HELLO), "Hello_Solo5"],
        "python -I -S pass": [*x, "pass"],
        "+ stdlib the tender imports": [*x, _path(ROOT, site) + "import " + STDLIB],
        "+ tender imports": [*x, _path(ROOT, site) + imports],
        "+ hello run": [*x, _path(ROOT, site) + run, *args],
    }
    if before is not None:
        out["+ tender imports (--before)"] = [*x, _path(before, site) + imports]
        out["+ hello run (--before)"] = [*x, _path(before, site) + run, *args]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--mem", type=int, default=512)
    ap.add_argument("--before", type=Path)
    a = ap.parse_args()
    py = str(ROOT / ".venv" / "bin" / "python3")
    site = subprocess.run([py, "-c", "import cffi, os; print(os.path.dirname(os.path.dirname("
                           "cffi.__file__)))"], capture_output=True, text=True,
                          check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="pytender-breakdown-") as tmp:
        floor = str(Path(tmp) / "floor")
        subprocess.run(["gcc", "-O2", f"-I{ROOT / 'csrc'}", "-o", floor,
                        str(ROOT / "bench" / "floor.c")], check=True)
        rows = cases(py, site, floor, a.mem, Path(tmp) / "pycache",
                     a.before.resolve() if a.before else None)
        devnull = os.open(os.devnull, os.O_RDWR)
        times: dict[str, list[float]] = {k: [] for k in rows}
        for rnd in range(WARMUP + a.rounds):
            for name, argv in rows.items():
                t0 = time.perf_counter_ns()
                pid = os.posix_spawn(argv[0], argv, os.environ,
                                     file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
                _, status = os.waitpid(pid, 0)
                if rnd >= WARMUP and status == 0:
                    times[name].append((time.perf_counter_ns() - t0) / 1e6)
        base = statistics.median(times["python -I -S pass"])
        fl = statistics.median(times["C floor -x"])
        print(f"{a.rounds} interleaved rounds, --mem={a.mem}, {os.cpu_count()} cpus")
        for name, argv in rows.items():
            rss = []
            for _ in range(3):
                r = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], capture_output=True,
                                   text=True)
                rss.append(int(r.stderr.strip().splitlines()[-1]))
            med = statistics.median(times[name]) if times[name] else float("nan")
            print(f"  {name:<30} {med:8.2f} ms {med / base:6.2f}x python {med / fl:6.2f}x "
                  f"floor {statistics.median(rss) / 1024:6.1f} MiB")


if __name__ == "__main__":
    sys.exit(main())
