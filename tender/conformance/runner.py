"""Running the cases against a tender command: the effects half (files,
pipes, processes). Judging stays in model.judge."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from tender.conformance import peer
from tender.conformance.model import Case, Echo, Kernel, judge
from tender.devices import FramePipe

CASE_TIMEOUT = 120.0
# What the net guest prints when the tender did not offer the ring.
RING_INACTIVE = "NET: ring inactive\n"
PACKAGE_GUESTS = Path(__file__).resolve().parent / "guests"
SOURCE_GUESTS = Path(__file__).resolve().parents[2] / "guests" / "build"


class SetupError(Exception):
    """The suite cannot run at all (no guests, bad arguments)."""


class Verdict(Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True, slots=True)
class Result:
    verdict: Verdict
    name: str
    why: str = ""

    def line(self) -> str:
        return f"{self.verdict.value} {self.name}" + (f" ({self.why})" if self.why else "")


@dataclass(frozen=True, slots=True)
class Target:
    """The tender under test: an argv prefix, and what it is known to offer."""

    command: tuple[str, ...]
    pytender: bool           # run the pytender-only cases
    ring: bool | None        # the net ring is offered; None: unknown, ask the guest


def pytender_target(handlers: str) -> Target:
    """pytender-hvt on this very Python, so the installed package is tested."""
    launcher = ("import sys; sys.argv[0] = 'pytender-hvt'; "
                "from tender.cli import main_hvt; main_hvt()")
    return Target((sys.executable, "-c", launcher, f"--handlers={handlers}"), True,
                  handlers == "native")


def find_guests(explicit: Path | None, names: Iterable[str]) -> Path:
    """The first directory holding every guest the cases need: --guests, the
    package's prebuilt copies, then a source checkout's guests/build."""
    wanted = sorted(set(names))
    candidates = [explicit] if explicit is not None else [PACKAGE_GUESTS, SOURCE_GUESTS]
    for d in candidates:
        if all((d / f"{n}.hvt").is_file() for n in wanted):
            return d
    where = ", ".join(str(d) for d in candidates)
    raise SetupError(f"guests not found in {where} (need {', '.join(wanted)}; "
                     "run `make -C guests` in the source tree)")


def guests_needed(cases: Iterable[Case]) -> set[str]:
    return {c.kernel for c in cases if isinstance(c.kernel, str)}


def skip_reason(case: Case, target: Target) -> str:
    if case.pytender_only and not target.pytender:
        return "pytender-only"
    if case.needs_ring and target.ring is False:
        return "needs the net ring: native handlers"
    return ""


def run_case(case: Case, target: Target, guests: Path) -> Result:
    why = skip_reason(case, target)
    if why:
        return Result(Verdict.SKIP, case.name, why)
    with tempfile.TemporaryDirectory(prefix="pytender-conf-") as tmp:
        pipes = [FramePipe() for _ in case.pipes]
        try:
            problems, out = _run(case, target, guests, Path(tmp), pipes)
        finally:
            for p in pipes:
                p.close()
    if case.needs_ring and target.ring is None and RING_INACTIVE in out:
        # The ring is optional (spec 5.1): a tender may fall back to hypercalls.
        return Result(Verdict.SKIP, case.name, "the tender offered no net ring")
    if problems:
        return Result(Verdict.FAIL, case.name, "; ".join(problems[:2]))
    return Result(Verdict.PASS, case.name)


def _kernel(case: Case, guests: Path, tmp: Path) -> list[str]:
    if case.kernel is Kernel.NONE:
        return []
    if case.kernel is Kernel.NOT_ELF:
        path = tmp / "not-elf.hvt"
        path.write_text("root:x:0:0:root:/root:/bin/sh\n")
        return [str(path)]
    return [str(guests / f"{case.kernel}.hvt")]


def _run(case: Case, target: Target, guests: Path, tmp: Path,
         pipes: list[FramePipe]) -> tuple[list[str], str]:
    """(every way the run missed its expectation, its stdout)"""
    names: dict[str, str] = {}
    for i, size in enumerate(case.images):
        img = tmp / f"img{i}.img"
        with open(img, "wb") as f:
            f.truncate(size)
        names[f"img{i}"] = str(img)
    for i, p in enumerate(pipes):
        names[f"pipe{i}"] = f"@{p.guest_fileno()}"
    argv = [*target.command, *(o.format(**names) for o in case.opts),
            *_kernel(case, guests, tmp), *case.args]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=tmp,
                                pass_fds=[p.guest_fileno() for p in pipes])
    except OSError as exc:
        return [f"could not start {argv[0]}: {exc.strerror}"], ""
    peer_errors: list[str] = []
    drivers = [threading.Thread(target=_drive, args=(p, e, peer_errors), daemon=True)
               for p, e in zip(pipes, case.pipes, strict=True) if e.count]
    for t in drivers:
        t.start()
    try:
        out, err = proc.communicate(timeout=CASE_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return [f"timed out after {CASE_TIMEOUT:.0f} s"], ""
    for t in drivers:
        t.join(CASE_TIMEOUT)
    text = out.decode(errors="replace")
    return judge(case.expect, proc.returncode, text, err.decode(errors="replace")) + \
        peer_errors, text


def _drive(pipe: FramePipe, echo: Echo, errors: list[str]) -> None:
    problem = peer.drive(pipe, echo, CASE_TIMEOUT)
    if problem is not None:
        errors.append(problem)


def run_all(cases: Iterable[Case], target: Target, guests: Path, jobs: int) -> Iterator[Result]:
    """Results in case order, computed `jobs` at a time."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run_case, c, target, guests) for c in cases]
        for f in futures:
            yield f.result()


def default_jobs() -> int:
    return min(4, (os.cpu_count() or 1) + 1)
