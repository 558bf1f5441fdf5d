"""Many guests at once: N library Tenders in one process (one thread each)
or N tender processes, all running the `hold` guest.

Guest i is told status 2 + i: it prints `hold: start S`, waits until its
own disk begins with "go", prints `hold: end S` and exits S. The harness
waits until every guest has printed its start line (so all N run at the
same time), then stops every STOP_EVERY-th guest (Tender.stop() in a
thread, SIGTERM to a process) and releases the others, and checks that
each run ended with its own status and only its own output."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tender.config import BlockSpec, HandlerMode, VmConfig
from tender.devices.disk import MemoryDisk
from tender.errors import Stopped, TenderError
from tender.session import Outcome
from tender.vm import Tender

GO = b"go"
STOP_EVERY = 5
MAX_GUESTS = 250            # statuses 2..251 stay distinct and are never 1 or 255
MEM = 8 << 20
SECTOR = 512
_LINE = re.compile(rb"hold: (start|end) (-?\d+)")


@dataclass(frozen=True)
class LoadReport:
    mode: str
    guests: int
    stopped: int
    start_seconds: float        # until every guest had printed its start line
    seconds: float              # the whole run
    failures: tuple[str, ...]


def status_of(i: int) -> int:
    return 2 + i


def stopped(i: int) -> bool:
    return i % STOP_EVERY == STOP_EVERY - 1


def judge_output(i: int, out: bytes, released: bool) -> str | None:
    """Why guest i's console is not its own, or None."""
    want = [(b"start", status_of(i))] + ([(b"end", status_of(i))] if released else [])
    got = [(m.group(1), int(m.group(2))) for m in _LINE.finditer(out)]
    if got != want:
        return f"guest {i}: console {got!r}, want {want!r}"
    return None


def _wait_started(outputs: Callable[[], Sequence[bytes]], n: int, deadline: float) -> str | None:
    """Poll until all n consoles hold a start line; None, or why not."""
    while True:
        outs = outputs()
        if any(b"hold: end" in o for o in outs):
            return "a guest ended before all had started"
        if all(b"hold: start" in o for o in outs):
            return None
        if time.monotonic() > deadline:
            missing = [i for i, o in enumerate(outs) if b"hold: start" not in o]
            return f"guests {missing[:10]} did not start in time"
        time.sleep(0.02)


# --- N threads in one process ---------------------------------------------------
@dataclass
class _Slot:
    tender: Tender
    disk: MemoryDisk
    console: int                    # a memfd
    diag: list[str]
    result: Outcome | BaseException | None = None


def _read_fd(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    return os.pread(fd, size, 0) if size else b""


def run_threads(kernel: str, n: int, handlers: HandlerMode = HandlerMode.NATIVE,
                timeout: float = 120.0) -> LoadReport:
    if not 1 <= n <= MAX_GUESTS:
        raise ValueError(f"guests: 1..{MAX_GUESTS}")
    t0 = time.monotonic()
    slots: list[_Slot] = []
    for i in range(n):
        disk = MemoryDisk(SECTOR)
        diag: list[str] = []
        cfg = VmConfig(kernel=kernel, args=(str(status_of(i)).encode(),), mem=MEM,
                       blocks=(BlockSpec("storage", disk=disk),), handlers=handlers)
        console = os.memfd_create(f"pytender-load-{i}", os.MFD_CLOEXEC)
        slots.append(_Slot(Tender(cfg, console_fd=console, diag=diag.append), disk, console,
                           diag))

    def body(slot: _Slot) -> None:
        try:
            slot.result = slot.tender.run()
        except BaseException as exc:    # judged below, per guest
            slot.result = exc

    threads = [threading.Thread(target=body, args=(s,), name=f"guest-{i}")
               for i, s in enumerate(slots)]
    failures: list[str] = []
    try:
        for t in threads:
            t.start()
        why = _wait_started(lambda: [_read_fd(s.console) for s in slots], n, t0 + timeout)
        start_seconds = time.monotonic() - t0
        if why:
            failures.append(why)
        for i, s in enumerate(slots):
            if stopped(i):
                s.tender.stop()
            else:
                s.disk.data[: len(GO)] = GO
        for t in threads:
            t.join(max(0.0, t0 + timeout - time.monotonic()))
    finally:
        for i, (s, t) in enumerate(zip(slots, threads, strict=True)):
            if t.is_alive():    # never leave a guest running, whatever failed
                failures.append(f"guest {i}: still running after {timeout} s")
                s.tender.stop()
                t.join()
    failures += [f for i, s in enumerate(slots) for f in _judge_thread(i, s)]
    for s in slots:
        os.close(s.console)
        s.disk.close()
    return LoadReport(f"threads/{handlers.value}", n, sum(map(stopped, range(n))),
                      start_seconds, time.monotonic() - t0, tuple(failures))


def _judge_thread(i: int, s: _Slot) -> list[str]:
    out: list[str] = []
    r = s.result
    if stopped(i):
        if not isinstance(r, Stopped):
            out.append(f"guest {i}: {r!r}, want Stopped")
    elif not isinstance(r, Outcome):
        out.append(f"guest {i}: {r!r}, want status {status_of(i)}")
    elif r.exit_code != status_of(i):
        out.append(f"guest {i}: status {r.exit_code}, want {status_of(i)}")
    if isinstance(r, BaseException) and not isinstance(r, TenderError):
        out.append(f"guest {i}: raised {type(r).__name__}: {r}")
    why = judge_output(i, _read_fd(s.console), not stopped(i))
    if why:
        out.append(why)
    if s.diag:
        out.append(f"guest {i}: diagnostics {s.diag!r}")
    return out


# --- N tender processes -----------------------------------------------------------
def run_processes(kernel: str, n: int, handlers: HandlerMode = HandlerMode.NATIVE,
                  timeout: float = 300.0) -> LoadReport:
    if not 1 <= n <= MAX_GUESTS:
        raise ValueError(f"guests: 1..{MAX_GUESTS}")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pytender-load-") as tmp:
        d = Path(tmp)
        procs: list[subprocess.Popen[bytes]] = []
        failures: list[str] = []
        try:
            for i in range(n):
                img = d / f"disk{i}"
                img.write_bytes(bytes(SECTOR))
                cmd = [sys.executable, "-m", "tender.cli", "run", f"--mem={MEM >> 20}",
                       f"--handlers={handlers.value}", f"--block:storage={img}", kernel,
                       str(status_of(i))]
                with open(d / f"out{i}", "wb") as out, open(d / f"err{i}", "wb") as err:
                    procs.append(subprocess.Popen(cmd, stdout=out, stderr=err,
                                                  stdin=subprocess.DEVNULL))
            why = _wait_started(lambda: [(d / f"out{i}").read_bytes() for i in range(n)], n,
                                t0 + timeout)
            start_seconds = time.monotonic() - t0
            if why:
                failures.append(why)
            for i, p in enumerate(procs):
                if stopped(i):
                    p.send_signal(signal.SIGTERM)
                else:
                    _release(d / f"disk{i}")
        finally:
            for i, p in enumerate(procs):   # never leave a tender running
                try:
                    p.wait(max(0.1, t0 + timeout - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                    failures.append(f"guest {i}: still running after {timeout} s")
        for i, p in enumerate(procs):
            failures += _judge_process(i, p.returncode, (d / f"out{i}").read_bytes(),
                                       (d / f"err{i}").read_bytes())
    return LoadReport(f"processes/{handlers.value}", n, sum(map(stopped, range(n))),
                      start_seconds, time.monotonic() - t0, tuple(failures))


def _release(img: Path) -> None:
    fd = os.open(img, os.O_WRONLY)
    try:
        os.pwrite(fd, GO, 0)
    finally:
        os.close(fd)


def _judge_process(i: int, status: int, out: bytes, err: bytes) -> list[str]:
    res: list[str] = []
    want = 1 if stopped(i) else status_of(i)
    if status != want:
        res.append(f"guest {i}: exit status {status}, want {want}")
    why = judge_output(i, out, not stopped(i))
    if why:
        res.append(why)
    want_err = b"pytender: Exiting on signal 15\n" if stopped(i) else b""
    if err != want_err:
        res.append(f"guest {i}: stderr {err[-300:]!r}, want {want_err!r}")
    return res


# --- stop() racing the end of runs ----------------------------------------------
def stop_race(kernel: str, runs: int, seed: int = 1) -> tuple[int, int, tuple[str, ...]]:
    """Run `runs` short guests (the exit guest) one after another, each in
    a thread of its own that ends with the run, while another thread stops
    each after a seeded random delay, so stops land before, during and
    after each run's vCPU loop and after its thread is gone. Returns
    (completed, stopped, failures): each run must end either way, and the
    process must survive (a stop signal sent to a thread that has exited
    is undefined behaviour)."""
    current: list[Tender | None] = [None]
    done = threading.Event()
    results: list[Outcome | BaseException] = []
    null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)

    def one(t: Tender) -> None:
        try:
            results.append(t.run())
        except BaseException as exc:    # judged below
            results.append(exc)

    def runner() -> None:
        for i in range(runs):
            t = Tender(VmConfig(kernel=kernel, args=(str(status_of(i)).encode(),), mem=MEM),
                       console_fd=null)
            current[0] = t
            th = threading.Thread(target=one, args=(t,))
            th.start()
            th.join()
        done.set()

    rng = random.Random(seed)
    # Stop delays span 1.5 run lengths, measured here after a warm-up run,
    # so that on a fast host as on a slow one most stops land inside a run
    # and some only after it ended.
    for _ in range(2):
        t0 = time.monotonic()
        Tender(VmConfig(kernel=kernel, args=(b"0",), mem=MEM), console_fd=null).run()
    span = 1.5 * (time.monotonic() - t0)

    def stopper() -> None:
        last = None
        while not done.is_set():
            t = current[0]
            if t is None or t is last:
                time.sleep(0.0002)
                continue
            time.sleep(rng.uniform(0.0, span))
            t.stop()
            last = t

    threads = [threading.Thread(target=runner), threading.Thread(target=stopper)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    os.close(null)
    failures = []
    for i, r in enumerate(results):
        if isinstance(r, Outcome):
            if r.exit_code != status_of(i) & 0xFF:
                failures.append(f"run {i}: status {r.exit_code}")
        elif not isinstance(r, Stopped):
            failures.append(f"run {i}: {r!r}")
    completed = sum(isinstance(r, Outcome) for r in results)
    return completed, sum(isinstance(r, Stopped) for r in results), tuple(failures)
