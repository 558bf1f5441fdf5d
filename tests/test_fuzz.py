"""Short CI run of the ELF/manifest fuzzer (the long run: README)."""

from __future__ import annotations

import pytest
from conftest import GUESTS

from tender.fuzz import cli_runs, loader


def test_loader_fuzz_only_typed_one_line_errors() -> None:
    guests = sorted(GUESTS.glob("*.hvt"))
    r = loader.run(7, guests, 20_000)
    assert r.cases == 20_000
    assert not r.failures, r.failures[:5]
    assert r.verdicts[loader.ACCEPTED] > 0 and len(r.verdicts) > 10


def test_fuzz_is_reproducible() -> None:
    guests = sorted(GUESTS.glob("*.hvt"))[:3]
    a = [c.mutant for c in loader.cases(3, guests, 200)]
    assert a == [c.mutant for c in loader.cases(3, guests, 200)]


@pytest.mark.usefixtures("kvm")
def test_cli_sample_ends_cleanly() -> None:
    guests = sorted(GUESTS.glob("*.hvt"))
    verdicts = [(c, loader.check(c)) for c in loader.cases(11, guests, 400)]
    chosen = cli_runs.sample(verdicts, 6, 11)[:6] + cli_runs.sample(
        [(c, v) for c, v in verdicts if v != loader.ACCEPTED], 6, 11)
    r = cli_runs.run(chosen, timeout=60)
    assert r.runs == 12
    assert not r.failures, r.failures
