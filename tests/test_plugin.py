"""The pytest kit (issue #8, part 3): the `hvt` fixture, found through the
pytest11 entry point, exercised by real pytest sub-runs (pytester) that run
real guests, as a guest author's test suite would."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from conftest import GUESTS, ROOT, guest, require_kvm, run_tender

pytest_plugins = ["pytester"]


def in_sandbox(pytester: pytest.Pytester) -> None:
    """Guests where a user's checkout has them: guests/build/ under the cwd."""
    (pytester.path / "guests").mkdir()
    (pytester.path / "guests" / "build").symlink_to(GUESTS)


def test_entry_point_is_registered() -> None:
    eps = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert eps.get("pytender") == "tender.pytest_plugin"


def test_example_suite_passes(pytester: pytest.Pytester) -> None:
    require_kvm()
    in_sandbox(pytester)
    shutil.copy(ROOT / "examples" / "test_guest.py", pytester.path / "test_guest.py")
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_fixture_outcome_and_errors(pytester: pytest.Pytester) -> None:
    require_kvm()
    in_sandbox(pytester)
    pytester.makepyfile(test_kit=f'''
from tender import Hypercall

HELLO = {guest("hello")!r}

def test_outcome(hvt):
    run = hvt.run(HELLO, "Hello_Solo5", mem=32 << 20, trace=False)
    assert (run.status, run.exit_code, run.error, run.trace) == (0, 0, None, [])
    assert b"Hello, World" in run.console and run.outcome.hypercalls["puts"] >= 2

def test_interceptor_error_is_the_run_error(hvt):
    def broken(call):
        raise OSError("no")
    run = hvt.run(HELLO, mem=32 << 20, intercept={{Hypercall.PUTS: broken}})
    assert run.status is None and run.exit_code == 1
    assert run.error.startswith("PUTS interceptor ") and run.error.endswith("raised OSError: no")
    assert run.trace[-1]["event"] == "exit" and run.trace[-1]["error"] == run.error

def test_bad_key(hvt):
    run = hvt.run(HELLO, intercept={{"nope": print}})
    assert run.exit_code == 1 and "is not a hypercall" in run.error
''')
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def _stable(records: list[dict[str, object]]) -> list[dict[str, object]]:
    """A trace record without what legitimately differs between runs."""
    out = []
    for rec in records:
        rec = {k: v for k, v in rec.items() if k != "time"}
        for part in ("args", "result"):
            if isinstance(rec.get(part), dict):
                rec[part] = {k: v for k, v in rec[part].items()   # type: ignore[union-attr]
                             if k not in rec.get("vary", ())}      # type: ignore[operator]
        out.append(rec)
    return out


def test_trace_is_the_cli_trace(pytester: pytest.Pytester, tmp_path: Path) -> None:
    require_kvm()
    cli_trace = tmp_path / "cli.jsonl"
    assert run_tender(f"--trace={cli_trace}", "--mem=32", guest("hello"), "Hello_Solo5").status == 0
    dump = tmp_path / "kit.json"
    pytester.makepyfile(test_dump=f'''
import json

def test_dump(hvt):
    run = hvt.run({guest("hello")!r}, "Hello_Solo5", mem=32 << 20)
    with open({str(dump)!r}, "w") as f:
        json.dump(run.trace, f)
''')
    pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    kit = json.loads(dump.read_text())
    cli = [json.loads(line) for line in cli_trace.read_text().splitlines()]
    assert len(kit) > 3 and _stable(kit) == _stable(cli)
