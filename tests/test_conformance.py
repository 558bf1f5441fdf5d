"""Issue 8 part 4: the conformance suite, run as a user runs it
(`python -m tender.conformance`) on real KVM: it passes against pytender in
both handler modes, and deliberately broken "tenders" (wrappers that change
the exit status or lose the diagnostics) make specific cases fail."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from tender.conformance import CASES, Expect, Verdict, find_guests, guests_needed, run_all
from tender.conformance.model import judge
from tender.conformance.runner import Target

HVT = Path(sys.executable).parent / "pytender-hvt"


def suite(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tender.conformance", *args],
                          capture_output=True, text=True, timeout=timeout, cwd="/")


def verdicts(out: str) -> dict[str, tuple[str, str]]:
    """case name -> (verdict, reason) from the suite's output lines."""
    found = {}
    for line in out.splitlines():
        m = re.fullmatch(r"(PASS|FAIL|SKIP) (\S+)(?: \((.*)\))?", line)
        if m:
            found[m[2]] = (m[1], m[3] or "")
    return found


def wrapper(tmp_path: Path, body: str) -> str:
    """A broken 'tender': a shell script around pytender-hvt."""
    path = tmp_path / "broken-tender"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


@pytest.mark.usefixtures("kvm")
@pytest.mark.parametrize("mode", ["native", "python"])
def test_suite_passes_against_pytender(mode: str) -> None:
    r = suite(f"--handlers={mode}")
    got = verdicts(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    assert set(got) == {c.name for c in CASES}
    ring = {c.name for c in CASES if c.needs_ring}
    skipped = {n for n, (v, _) in got.items() if v == "SKIP"}
    assert skipped == (ring if mode == "python" else set())
    assert all(got[n] == ("SKIP", "needs the net ring: native handlers") for n in skipped)
    passed = len(CASES) - len(skipped)
    assert r.stdout.splitlines()[-1] == (f"{passed} passed, 0 failed, {len(skipped)} skipped"
                                         if skipped else f"{passed} passed, 0 failed")
    assert r.stderr == ""


@pytest.mark.usefixtures("kvm")
def test_a_tender_that_always_exits_0_fails_the_status_cases(tmp_path: Path) -> None:
    broken = wrapper(tmp_path, f'"{HVT}" "$@"\nexit 0')
    r = suite("--tender", broken, "-k", "halt-status", "-k", "puts-last", "-k", "hello",
              "-k", "abort-no-cookie", "-k", "walltime-into-text", "-k", "net-echo")
    got = verdicts(r.stdout)
    assert r.returncode == 1, r.stdout + r.stderr
    assert got["halt-status-0"] == ("PASS", "")
    assert got["halt-status-7"] == ("FAIL", "exit status 0, expected 7")
    assert got["abort-no-cookie"] == ("FAIL", "exit status 0, expected 255")
    assert got["puts-last-byte-of-ram"] == ("FAIL", "exit status 0, expected 1")
    assert got["hello"] == ("PASS", "")
    # Our deliberate differences are not asked of another tender.
    assert got["walltime-into-text-refused"] == ("SKIP", "pytender-only")
    assert got["net-echo"] == ("SKIP", "pytender-only")
    n_fail = sum(v == "FAIL" for v, _ in got.values())
    n_pass = sum(v == "PASS" for v, _ in got.values())
    n_skip = sum(v == "SKIP" for v, _ in got.values())
    assert r.stdout.splitlines()[-1] == f"{n_pass} passed, {n_fail} failed, {n_skip} skipped"


@pytest.mark.usefixtures("kvm")
def test_a_tender_that_loses_its_messages_fails_the_message_cases(tmp_path: Path) -> None:
    broken = wrapper(tmp_path, f'exec "{HVT}" "$@" 2>/dev/null')
    r = suite("--tender", broken, "--pytender-only", "-k", "halt-status-7", "-k", "port-far",
              "-k", "walltime-into-text", "-k", "block-image-empty", "-k", "net-echo-hyp")
    got = verdicts(r.stdout)
    assert r.returncode == 1, r.stdout + r.stderr
    assert got["halt-status-7"] == ("PASS", "")
    assert got["net-echo-hypercalls-only"] == ("PASS", "")   # --pytender-only runs it
    assert got["port-far"] == ("FAIL", "stderr lacks 'Invalid guest port access: port=0x1234'")
    assert got["walltime-into-text-refused"][0] == "FAIL"
    assert got["block-image-empty"][0] == "FAIL"


@pytest.mark.usefixtures("kvm")
def test_ring_cases_skip_when_another_tender_offers_no_ring() -> None:
    """The ring is optional (spec 5.1); pytender itself (native) must offer it."""
    r = suite("--tender", f"{HVT} --handlers=python", "--pytender-only", "-k", "ring-bad-op")
    assert r.returncode == 0, r.stdout + r.stderr
    assert verdicts(r.stdout) == {"ring-bad-op": ("SKIP", "the tender offered no net ring")}


def test_bad_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for args, text in ((["--tender", "x", "--handlers=python"], "--handlers is for the"),
                       (["--tender", ""], "--tender needs a command"),
                       (["--tender", "'unbalanced"], "quotation"),
                       (["--guests", str(tmp_path)], "guests not found in"),
                       (["--tender", "/nonexistent/hvt"], "command not found")):
        r = suite(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert r.stderr.startswith("conformance: ") and text in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1 and r.stdout == ""


@pytest.mark.usefixtures("kvm")
def test_relative_tender_and_guests_paths(tmp_path: Path) -> None:
    """Cases run in a temporary directory; relative paths given by the user
    still mean what they meant where the suite was started."""
    (tmp_path / "g").symlink_to(ROOT / "guests" / "build")
    (tmp_path / "t").symlink_to(HVT)
    r = subprocess.run([sys.executable, "-m", "tender.conformance", "--tender", "./t",
                        "--guests", "g", "-k", "halt-status-7"], capture_output=True,
                       text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "PASS halt-status-7\n1 passed, 0 failed\n"


def test_list_marks_pytender_only_cases() -> None:
    r = suite("--list")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert len(lines) == len(CASES)
    assert "walltime-into-text-refused (pytender-only)" in lines
    assert "halt-status-7" in lines


def test_makefile_ships_every_guest_the_cases_need() -> None:
    text = (ROOT / "guests" / "Makefile").read_text()
    m = re.search(r"^CONFORMANCE_GUESTS := ((?:.*\\\n)*.*)$", text, re.M)
    assert m is not None
    assert set(m[1].replace("\\\n", " ").split()) == guests_needed(CASES)


def test_case_names_are_unique() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(("expect", "status", "out", "err", "why"), [
    (Expect(1, err=("Invalid guest access",)), 1, "", "solo5-hvt: Invalid guest access: x", []),
    (Expect(1, err=("Invalid guest access",)), 0, "", "",
     ["exit status 0, expected 1", "stderr lacks 'Invalid guest access'"]),
    (Expect(0, out_exact="SUCCESS\n"), 0, "SUCCESS\nmore\n", "",
     ["stdout is 'SUCCESS\\nmore\\n', expected 'SUCCESS\\n'"]),
    (Expect(1, err_any=("a", "b")), 1, "", "c", ["stderr has none of 'a' / 'b'"]),
    (Expect(0, out_not=("FAILURE",)), 0, "FAILURE: x", "", ["stdout has 'FAILURE'"]),
    (Expect(0), 0, "", "Traceback (most recent call last):", ["a Python traceback reached "
                                                                "the user"]),
])
def test_judge(expect: Expect, status: int, out: str, err: str, why: list[str]) -> None:
    assert judge(expect, status, out, err) == why


@pytest.mark.usefixtures("kvm")
def test_library_use() -> None:
    """examples/conformance_subset.py (the README snippet), run as a user
    runs it; then the same cases through a command that is not a tender."""
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "conformance_subset.py")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    cases = [c for c in CASES if c.name.startswith("halt-status")]
    assert proc.stdout == "".join(f"PASS {c.name}\n" for c in cases)
    results = list(run_all(cases, Target(("/bin/false",), pytender=False, ring=False),
                           find_guests(None, guests_needed(cases)), jobs=2))
    assert [r.name for r in results] == [c.name for c in cases]
    assert all(r.verdict is Verdict.FAIL for r in results)
