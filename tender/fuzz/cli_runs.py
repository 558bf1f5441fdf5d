"""A sample of the mutants through the real CLI on KVM, with a timeout.

Every run must end with a documented exit status (the guest's 0-255, or 1
for a tender error) without a signal, a traceback or a hang, and stderr
may hold at most one `pytender:` line (plus the guest-independent lines the
tender documents, e.g. warnings)."""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tender.fuzz.loader import ACCEPTED, Case, verdict_of

TIMEOUT = 30.0


@dataclass
class CliReport:
    runs: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[Case, str]] = field(default_factory=list)


def judge(status: int, stderr: bytes, timed_out: bool) -> str | None:
    """Why a run broke the contract, or None."""
    if timed_out:
        return "hang"
    if status < 0:
        return f"killed by signal {-status}"
    text = stderr.decode(errors="replace")
    if "Traceback" in text:
        return "traceback"
    # solo5-hvt's unattached-device report is one line per device before
    # the final line (spec): those are listed, not counted as extra errors.
    errors = [line for line in text.splitlines() if line.startswith("pytender:")
              and not line.endswith("declared but not attached.")]
    if len(errors) > 1:
        return f"{len(errors)} error lines"
    return None


def run_case(case: Case, workdir: Path, timeout: float = TIMEOUT) -> tuple[str, str | None]:
    """(status key, failure or None) of one mutant through `pytender run`."""
    kernel = workdir / f"{case.guest}.{case.index}"
    kernel.write_bytes(case.mutant.data)
    cmd = [sys.executable, "-m", "tender.cli", "run", f"--mem={case.mem_mib}",
           str(kernel)]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return "timeout", "hang"
    finally:
        kernel.unlink(missing_ok=True)
    last = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
    key = f"exit {proc.returncode}: {verdict_of(last[0], str(kernel))[:90]}"
    return key, judge(proc.returncode, proc.stderr, False)


def sample(verdicts: list[tuple[Case, str]], rejected: int, seed: int) -> list[Case]:
    """All accepted cases and `rejected` of the others, chosen by the seed."""
    accepted = [c for c, v in verdicts if v == ACCEPTED]
    others = [c for c, v in verdicts if v != ACCEPTED]
    rng = random.Random(seed)
    return accepted + rng.sample(others, min(rejected, len(others)))


def run(chosen: list[Case], timeout: float = TIMEOUT) -> CliReport:
    report = CliReport()
    with tempfile.TemporaryDirectory(prefix="pytender-fuzz-") as d:
        for case in chosen:
            key, failure = run_case(case, Path(d), timeout)
            report.runs += 1
            report.statuses[key] += 1
            if failure:
                report.failures.append((case, failure))
    return report
