"""`python -m tender.stress load|leaks|crash|faults [...]`: the reliability
runs with their figures (README "Reliability"). Exit 1 if any check failed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tender.config import HandlerMode
from tender.stress import crash, faults, leaks, load, netload

MODES = [m.value for m in HandlerMode]


def _guest(guests: str, name: str) -> str:
    path = Path(guests) / f"{name}.hvt"
    if not path.exists():
        raise SystemExit(f"stress: {path} is missing (make -C guests)")
    return str(path)


def _load(a: argparse.Namespace) -> list[str]:
    kernel = _guest(a.guests, "hold")
    bad: list[str] = []
    for mode in a.handlers:
        for fn, n in ((load.run_threads, a.threads), (load.run_processes, a.processes)):
            if n <= 0:
                continue
            r = fn(kernel, n, HandlerMode(mode))
            print(f"{r.mode}: {r.guests} guests at once ({r.stopped} stopped), all started "
                  f"after {r.start_seconds:.2f} s, done in {r.seconds:.2f} s, "
                  f"{len(r.failures)} failures")
            bad += r.failures
    for mode in a.handlers if a.net > 0 else ():
        r = netload.run_threads(_guest(a.guests, "net"), a.net, HandlerMode(mode))
        print(f"{r.mode}: {r.guests} net guests at once on FramePipes, all answered ARP "
              f"after {r.start_seconds:.2f} s, done in {r.seconds:.2f} s, "
              f"{len(r.failures)} failures")
        bad += r.failures
    if a.stop_race > 0:
        done, stopped, failures = load.stop_race(_guest(a.guests, "exit"), a.stop_race)
        print(f"stop race: {a.stop_race} runs, each in its own thread and stopped at a random "
              f"point: {done} completed, {stopped} stopped, {len(failures)} failures")
        bad += failures
    return bad


def _leaks(a: argparse.Namespace) -> list[str]:
    r = leaks.run(_guest(a.guests, "records"), a.runs)
    w, e, g = r.at_warmup, r.at_end, r.growth
    print(f"leaks: {r.runs} runs in {r.seconds:.1f} s ({r.seconds / r.runs * 1000:.1f} ms/run)")
    print(f"  at run {leaks.WARMUP}: rss {w.rss_kib} KiB, {w.fds} fds, {w.threads} threads, "
          f"{w.maps} maps")
    print(f"  at run {r.runs}: rss {e.rss_kib} KiB, {e.fds} fds, {e.threads} threads, "
          f"{e.maps} maps")
    print(f"  growth: rss {g.rss_kib:+d} KiB, fds {g.fds:+d}, threads {g.threads:+d}, "
          f"maps {g.maps:+d}")
    bad = list(r.failures)
    if g.fds or g.threads:
        bad.append(f"fd or thread leak: {g}")
    if g.rss_kib > a.rss_bound_kib:
        bad.append(f"rss grew {g.rss_kib} KiB > {a.rss_bound_kib} KiB")
    return bad


def _crash(a: argparse.Namespace) -> list[str]:
    kernel = _guest(a.guests, "records")
    bad: list[str] = []
    for mode in a.handlers:
        r = crash.run(kernel, a.kills, a.seed, HandlerMode(mode), a.records)
        phases = ", ".join(f"{n} {k}" for k, n in sorted(r.phases.items()))
        print(f"{r.mode}: {r.kills} SIGKILLs (seed {r.seed}; {phases}), {r.acked} records "
              f"acknowledged, {len(r.failures)} runs lost or tore one")
        bad += r.failures
    return bad


def _faults(a: argparse.Namespace) -> list[str]:
    kernel = _guest(a.guests, "records")
    bad: list[str] = []
    for scenario in faults.SCENARIOS:
        missing = faults.missing_tools(scenario)
        if missing:
            bad.append(f"{scenario} needs {', '.join(missing)}")
            continue
        for mode in a.handlers:
            r = faults.run(scenario, HandlerMode(mode), kernel)
            print(f"{r.scenario}/{r.handlers}: exit {r.status}, {r.acked} writes acknowledged, "
                  f"{r.failed} got EUNSPEC; tender said: {r.stderr or '(nothing)'}")
            bad += [f"{r.scenario}/{r.handlers}: {f}" for f in r.failures]
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tender.stress")
    ap.add_argument("--guests", default="guests/build")
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("load", help="many guests at once")
    p.add_argument("--threads", type=int, default=50)
    p.add_argument("--processes", type=int, default=50)
    p.add_argument("--net", type=int, default=50, help="net guests at once, in process")
    p.add_argument("--stop-race", type=int, default=1000, metavar="RUNS")
    p.add_argument("--handlers", nargs="+", choices=MODES, default=MODES)
    p.set_defaults(fn=_load)
    p = sub.add_parser("leaks", help="many guests in a row, in process")
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--rss-bound-kib", type=int, default=4096)
    p.set_defaults(fn=_leaks)
    p = sub.add_parser("crash", help="SIGKILL while the guest writes")
    p.add_argument("--kills", type=int, default=100)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--records", type=int, default=200)
    p.add_argument("--handlers", nargs="+", choices=MODES, default=MODES)
    p.set_defaults(fn=_crash)
    p = sub.add_parser("faults", help="disk full and EIO under the guest (root)")
    p.add_argument("--handlers", nargs="+", choices=MODES, default=MODES)
    p.set_defaults(fn=_faults)
    a = ap.parse_args(argv)
    bad: list[str] = a.fn(a)
    for why in bad[:20]:
        print(f"FAIL {why}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
