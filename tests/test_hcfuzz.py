"""Hostile hypercalls (issue 13): the seeded hcfuzz guest against the real
CLI and the library on KVM, every mode. The long run is in the README."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GUESTS

from tender.fuzz import hypercalls as hc
from tender.fuzz.hypercalls import EXPECT, Mode, Workdir

KVM = pytest.mark.usefixtures("kvm")


@KVM
def test_short_campaign_all_modes() -> None:
    """9 runs of 1500 random calls: 3 per mode, one of each in process."""
    r = hc.campaign(GUESTS, 5, 9 * 1500, 1500, inprocess=3)
    assert not r.failures, r.failures
    assert r.runs == 9 and r.calls == 9 * 1500
    assert set(r.calls_by_mode) == {"ring", "native", "python"}
    assert r.ring > 0       # the ring mode really posted ring entries


@KVM
@pytest.mark.parametrize("final", sorted(EXPECT))
def test_every_final_step_gets_its_verdict(tmp_path: Path, final: str) -> None:
    """Each hostile final step, after a few random calls, in a mode of its own
    (ring kinds need the ring); the verdict must be the documented one."""
    modes = list(Mode)
    mode = Mode.RING if final.startswith("ring-") else modes[sorted(EXPECT).index(final) % 3]
    r = hc.run_cli(GUESTS, Workdir(tmp_path, 1), mode, 17, 200, final)
    assert r.failure is None, r
    assert r.verdict.startswith(f"{final} -> ")


@KVM
@pytest.mark.parametrize("mode", list(Mode))
def test_inprocess_canary_page_untouched(tmp_path: Path, mode: Mode) -> None:
    r = hc.run_inprocess(GUESTS, Workdir(tmp_path, 2), mode, 23, 1000, "halt")
    assert r.failure is None, r


@KVM
def test_canary_file_change_is_caught(tmp_path: Path) -> None:
    """The canary check is not a formality: a changed file fails the run."""
    wd = Workdir(tmp_path, 3)
    wd.canary.write_bytes(b"changed")
    r = hc.run_cli(GUESTS, wd, Mode.NATIVE, 1, 10, "halt")
    assert r.failure == "canary file beside the block image changed"


@pytest.mark.parametrize(("final", "status", "out", "err", "why"), [
    ("nr0", 1, b"", b"pytender: Invalid guest hypercall: num=0\n", None),
    ("nr0", 1, b"", b"", "stderr ''"),
    ("nr0", 1, b"", b"pytender: a\npytender: b\n", "2 error lines"),
    ("puts-last", 0, b"", b"", "exit 0, expected 1"),
    ("halt", 254, b"hcfuzz: halt -2\n", b"", None),
    ("halt", 2, b"hcfuzz: halt -2\n", b"", "exit 2, expected 254"),
    ("pagefault", 255, b"", b"Traceback (most recent call last):\n", "traceback"),
    ("", 1, b"", b"pytender: Invalid guest access: gpa=0x1, sz=2\n", "no summary line"),
    ("halt", -9, b"hcfuzz: halt 0\n", b"", "killed by signal 9"),
])
def test_verdict_rules(final: str, status: int, out: bytes, err: bytes,
                       why: str | None) -> None:
    _, failure = hc.verdict(final, status, out, err)
    if why is None:
        assert failure is None
    else:
        assert failure is not None and failure.startswith(why), failure
