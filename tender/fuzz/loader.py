"""ELF/manifest fuzzing through the real loader, in process.

The check is what `tender.vm` does before it touches KVM: `elf.read_notes`,
`manifest.decode` and `elf.plan_load` (the public loader functions). A case
passes with a valid plan or a `TenderError` whose message is one line;
anything else is a failure, recorded with the seed and case number that
reproduce it."""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tender import elf, layout
from tender import manifest as mft
from tender.errors import ManifestError, TenderError
from tender.fuzz.mutate import Mutant, mutate

ACCEPTED = "accepted"
# Guest memory sizes a case is planned against (MiB), as --mem= would give.
MEMS = (2, 8, 64, 512, 4096)
_NUMBER = re.compile(r"\b(?:0x[0-9a-f]+|\d+)\b")


@dataclass(frozen=True)
class Case:
    guest: str
    index: int
    mem_mib: int
    mutant: Mutant


@dataclass(frozen=True)
class Failure:
    case: Case
    error: str          # repr of the exception


@dataclass
class Report:
    seed: int
    cases: int = 0
    seconds: float = 0.0
    verdicts: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)


def case_rng(seed: int, guest_index: int, index: int) -> random.Random:
    """Each case has its own generator: case N reproduces without 0..N-1."""
    return random.Random((seed << 40) ^ (guest_index << 32) ^ index)


def cases(seed: int, guests: list[Path], count: int) -> Iterator[Case]:
    """`count` mutants, round-robin over the guests."""
    originals = [p.read_bytes() for p in guests]
    for i in range(count):
        g = i % len(guests)
        rng = case_rng(seed, g, i)
        yield Case(guests[g].name, i, rng.choice(MEMS), mutate(originals[g], rng))


def verdict_of(message: str, path: str) -> str:
    """A histogram key: the message without the file name and numbers."""
    return _NUMBER.sub("N", message.replace(path, "KERNEL"))


def load(data: bytes, path: str, mem_mib: int) -> elf.LoadPlan:
    """The loader's steps 2-3 and 8 on bytes (see tender.vm)."""
    notes = elf.read_notes(data, path)
    try:
        mft.decode(notes.manifest_payload)
    except ManifestError:
        raise ManifestError(f"{path}: Solo5 manifest is invalid") from None
    alloc = layout.mem_size(mem_mib << 20, has_net=False).alloc
    return elf.plan_load(data, path, alloc)


def check(case: Case) -> str:
    """The verdict of one case; a contract breach is a verdict starting
    with 'FAIL' (never raised: the run goes on and counts them)."""
    path = f"fuzz/{case.guest}"
    try:
        load(case.mutant.data, path, case.mem_mib)
    except TenderError as e:
        if "\n" in e.message or not e.message or not e.message.isprintable():
            return f"FAIL multi-line {type(e).__name__}: {e.message!r}"
        return f"{type(e).__name__}: {verdict_of(e.message, path)}"
    except Exception as e:     # the contract: never anything else
        return f"FAIL {type(e).__name__}: {e!r}"
    return ACCEPTED


def run(seed: int, guests: list[Path], count: int) -> Report:
    report = Report(seed)
    t0 = time.perf_counter()
    for case in cases(seed, guests, count):
        v = check(case)
        report.verdicts[v] += 1
        if v.startswith("FAIL"):
            report.failures.append(Failure(case, v))
        report.cases += 1
    report.seconds = time.perf_counter() - t0
    return report
