"""Hostile hypercalls: the seeded `hcfuzz` guest against the real tender.

`python -m tender.fuzz hypercalls --seed S --calls N [--per-run K]` splits N
random hypercalls (and ring entries) into runs of K, rotating over three
modes: native handlers with the net ring, native without it, and the Python
reference handlers. Most runs go through the real CLI (sandboxed, as a user
runs it); every `--inprocess`-th run goes through the library in this
process instead, with a canary page mapped beside the tender's own memory.

Each run must end with the verdict its final step asks for (the guest names
it in its summary line): the status it halted with, or exit 1 and one
`pytender:` line naming the fault, never a signal, a traceback, a hang or a
second error line. After every run a canary file beside the block image, and
the canary page of in-process runs, must be unchanged."""

from __future__ import annotations

import argparse
import enum
import hashlib
import mmap
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tender.fuzz.cli_runs import judge

GUEST = "hcfuzz.hvt"
MEM_MIB = 32
DISK_SIZE = 1 << 20
TIMEOUT = 120.0
FEED_INTERVAL = 0.02        # a frame for the guest this often (ends u64-max POLLs)
SUMMARY = re.compile(rb"hcfuzz: seed (\d+) calls (\d+) ring (\d+) .* final (\S+)\n")
_NUMBERS = re.compile(r"0x[0-9a-f]+|\d+")
HALTED = re.compile(rb"hcfuzz: halt (-?\d+)\n")

FAULT = "Invalid guest access: gpa="
# What each final step must end with: (exit status, the pytender line's
# start after "pytender: "); None for "halt", whose status the guest prints.
EXPECT: dict[str, tuple[int, str] | None] = {
    "halt": None,
    "pagefault": (255, ""),
    "nr0": (1, "Invalid guest hypercall: num=0"),
    "ring-jump": (1, "Invalid guest ring state: "),
    **{k: (1, "Invalid guest port access: port=0x")
       for k in ("nr9", "port-in", "port-size", "port-far")},
    **{k: (1, FAULT) for k in (
        "puts-last", "puts-at-m", "puts-past-m", "puts-wrap", "arg-at-end",
        "arg-past-m", "walltime-low", "walltime-text", "blkread-text",
        "netread-low", "cookie-oob", "ring-oob")},
}


class Mode(enum.Enum):
    RING = ("--handlers=native", "--net-ring=on")
    NATIVE = ("--handlers=native", "--net-ring=off")
    PYTHON = ("--handlers=python",)


@dataclass(frozen=True)
class RunResult:
    mode: Mode
    seed: int
    calls: int              # hypercalls and ring entries the guest reported
    ring: int
    verdict: str            # histogram key
    failure: str | None


@dataclass
class Report:
    runs: int = 0
    calls: int = 0
    ring: int = 0
    seconds: float = 0.0
    verdicts: Counter[str] = field(default_factory=Counter)
    failures: list[RunResult] = field(default_factory=list)
    calls_by_mode: Counter[str] = field(default_factory=Counter)
    seconds_by_mode: dict[str, float] = field(default_factory=dict)

    def add(self, r: RunResult, seconds: float) -> None:
        self.runs += 1
        self.calls += r.calls
        self.ring += r.ring
        self.calls_by_mode[r.mode.name.lower()] += r.calls
        key = r.mode.name.lower()
        self.seconds_by_mode[key] = self.seconds_by_mode.get(key, 0.0) + seconds
        self.verdicts[f"{r.mode.name.lower()}: {r.verdict}"] += 1
        if r.failure:
            self.failures.append(r)


def expected(final: str, stdout: bytes) -> tuple[int, str] | None:
    """The (status, message start) a run whose guest chose `final` must end with."""
    if final not in EXPECT:
        return None
    want = EXPECT[final]
    if want is None:
        m = HALTED.search(stdout)
        return (int(m[1]) & 0xFF, "") if m else None
    return want


def verdict(final: str, status: int, stdout: bytes, stderr: bytes) -> tuple[str, str | None]:
    """(histogram key, failure or None) of one finished run."""
    text = stderr.decode(errors="replace")
    lines = text.splitlines()
    msg = lines[-1].removeprefix("pytender: ") if lines else ""
    key = f"{final or '?'} -> exit {status}" + (f": {_NUMBERS.sub('N', msg)}" if msg else "")
    broken = judge(status, stderr, False)
    if broken:
        return key, broken
    want = expected(final, stdout)
    if want is None:
        return key, "no summary line (the run ended among the random calls)" if not final \
            else f"unknown final step {final!r}"
    w_status, w_msg = want
    if status != w_status:
        return key, f"exit {status}, expected {w_status}"
    if w_msg and (len(lines) != 1 or not msg.startswith(w_msg)):
        return key, f"stderr {text!r}, expected one line starting {w_msg!r}"
    if not w_msg and text:
        return key, f"unexpected stderr {text!r}"
    return key, None


class Feeder:
    """The host end of the guest's net device: a frame every FEED_INTERVAL,
    and everything the guest sends is read and dropped."""

    def __init__(self, host: socket.socket) -> None:
        self._host = host
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, daemon=True)

    def __enter__(self) -> Feeder:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _work(self) -> None:
        frame = bytes(range(60))
        self._host.setblocking(False)
        while not self._stop.wait(FEED_INTERVAL):
            try:
                self._host.send(frame)
            except OSError:
                pass        # full (the guest is not reading) or gone
            try:
                while self._host.recv(65536):
                    pass
            except OSError:
                pass


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Workdir:
    """A block image and, in the same directory, a canary file whose hash is
    checked after every run."""

    def __init__(self, root: Path, seed: int) -> None:
        self.disk = root / "disk.img"
        self.canary = root / "canary.bin"
        with open(self.disk, "wb") as f:
            f.truncate(DISK_SIZE)
        self.canary.write_bytes(random.Random(seed).randbytes(1 << 16))
        os.chmod(self.canary, 0o644)
        self.canary_hash = _sha(self.canary)

    def canary_intact(self) -> bool:
        return self.canary.exists() and _sha(self.canary) == self.canary_hash


def guest_path(guests: Path) -> Path:
    return guests / GUEST


def run_cli(guests: Path, wd: Workdir, mode: Mode, seed: int, calls: int,
            final: str | None = None, timeout: float = TIMEOUT) -> RunResult:
    """One run through `python -m tender.cli run` with a seqpacket net device."""
    host, guest_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    cmd = [sys.executable, "-m", "tender.cli", "run", *mode.value, f"--mem={MEM_MIB}",
           f"--block:storage={wd.disk}", f"--net:service0=@{guest_end.fileno()}",
           str(guest_path(guests)), str(seed), str(calls), *([final] if final else [])]
    try:
        with Feeder(host):
            proc = subprocess.run(cmd, capture_output=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL, pass_fds=(guest_end.fileno(),))
    except subprocess.TimeoutExpired:
        return RunResult(mode, seed, 0, 0, "timeout", "hang")
    finally:
        host.close()
        guest_end.close()
    return _result(mode, seed, proc.returncode, proc.stdout, proc.stderr, wd, None)


def _result(mode: Mode, seed: int, status: int, out: bytes, err: bytes, wd: Workdir,
            extra_failure: str | None) -> RunResult:
    m = SUMMARY.search(out)
    final = m[4].decode() if m else ""
    key, failure = verdict(final, status, out, err)
    if not wd.canary_intact():
        failure = "canary file beside the block image changed"
    failure = extra_failure or failure
    n, ring = (int(m[2]), int(m[3])) if m else (0, 0)
    return RunResult(mode, seed, n, ring, key, failure)


def run_inprocess(guests: Path, wd: Workdir, mode: Mode, seed: int, calls: int,
                  final: str | None = None) -> RunResult:
    """One run through the library, in this process, with a canary page mapped
    before the tender maps guest memory; the page must be intact after."""
    from tender import BlockSpec, HandlerMode, NetSpec, Tender, TenderError, VmConfig
    from tender.devices import FramePipe

    pattern = random.Random(seed).randbytes(mmap.PAGESIZE)
    canary = mmap.mmap(-1, mmap.PAGESIZE)
    canary[:] = pattern
    pipe = FramePipe()
    console = tempfile.TemporaryFile()
    cfg = VmConfig(
        kernel=str(guest_path(guests)), mem=MEM_MIB << 20,
        args=tuple(a.encode() for a in (str(seed), str(calls), *([final] if final else []))),
        handlers=HandlerMode.PYTHON if mode is Mode.PYTHON else HandlerMode.NATIVE,
        net_ring=mode is Mode.RING,
        blocks=(BlockSpec("storage", str(wd.disk)),), nets=(NetSpec("service0", pipe=pipe),),
    )
    diag: list[str] = []
    host = socket.socket(fileno=os.dup(pipe.fileno()))
    try:
        with Feeder(host):
            try:
                status = Tender(cfg, console_fd=console.fileno(), diag=diag.append).run().exit_code
            except TenderError as exc:
                diag.append(exc.message)
                status = 1
        console.seek(0)
        out = console.read()
    finally:
        console.close()
        host.close()
        pipe.close()
    err = "".join(f"pytender: {d}\n" for d in diag).encode()
    intact = canary[:] == pattern
    canary.close()
    return _result(mode, seed, status, out, err, wd,
                   None if intact else "canary page in the tender process changed")


def plan(seed: int, calls: int, per_run: int) -> Iterator[tuple[Mode, int, int]]:
    """(mode, run seed, calls) for each run: modes in rotation, run seeds
    derived from the campaign seed so that any run reproduces alone."""
    modes = list(Mode)
    rng = random.Random(seed)
    i = 0
    while calls > 0:
        n = min(per_run, calls)
        yield modes[i % len(modes)], rng.getrandbits(31), n
        calls -= n
        i += 1


def campaign(guests: Path, seed: int, calls: int, per_run: int, inprocess: int,
             timeout: float = TIMEOUT, progress: bool = False) -> Report:
    report = Report()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pytender-hcfuzz-") as d:
        wd = Workdir(Path(d), seed)
        for i, (mode, run_seed, n) in enumerate(plan(seed, calls, per_run)):
            t1 = time.perf_counter()
            if inprocess and i % inprocess == inprocess - 1:
                r = run_inprocess(guests, wd, mode, run_seed, n)
            else:
                r = run_cli(guests, wd, mode, run_seed, n, timeout=timeout)
            report.add(r, time.perf_counter() - t1)
            if progress and report.runs % 20 == 0:
                print(f"  {report.runs} runs, {report.calls} calls, "
                      f"{len(report.failures)} failures", file=sys.stderr)
    report.seconds = time.perf_counter() - t0
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tender.fuzz hypercalls")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--calls", type=int, default=30_000)
    ap.add_argument("--per-run", type=int, default=2_000)
    ap.add_argument("--inprocess", type=int, default=5,
                    help="every Nth run in process, with the canary page (0: never)")
    ap.add_argument("--guests", default="guests/build")
    a = ap.parse_args(argv)
    guests = Path(a.guests)
    if not guest_path(guests).exists():
        print(f"fuzz: no {GUEST} in {guests} (make -C guests)", file=sys.stderr)
        return 1
    r = campaign(guests, a.seed, a.calls, a.per_run, a.inprocess, progress=True)
    print(f"hypercalls: {r.calls} calls ({r.ring} of them ring entries) in {r.runs} runs, "
          f"seed {a.seed}, {r.calls / r.seconds:.0f} calls/s, {len(r.failures)} failures")
    for mode, n in sorted(r.calls_by_mode.items()):
        print(f"  {mode}: {n} calls, {n / r.seconds_by_mode[mode]:.0f} calls/s")
    for key, n in sorted(r.verdicts.items()):
        print(f"{n:7d}  {key}")
    for f in r.failures[:20]:
        print(f"FAIL {f.mode.name.lower()} seed {f.seed} calls {f.calls}: {f.failure} "
              f"({f.verdict})")
    return 1 if r.failures else 0
