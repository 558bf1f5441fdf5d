"""--trace=FILE: one JSON line per hypercall / VM exit / end of run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import guest, run_tender

pytestmark = pytest.mark.usefixtures("kvm")


def _read(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines()
    assert lines, "empty trace"
    return [json.loads(line) for line in lines]


def _stable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop what may differ between runs: times and the fields each record
    marks in "vary"."""
    out = []
    for rec in records:
        rec = {k: v for k, v in rec.items() if k != "time"}
        for key in rec.get("vary", ()):
            for part in ("args", "result"):
                if key in rec.get(part, {}):
                    rec[part] = {k: v for k, v in rec[part].items() if k != key}
        out.append(rec)
    return out


@pytest.mark.parametrize("mode", ["--handlers=native", "--handlers=python"])
def test_hello_trace(tmp_path: Path, mode: str) -> None:
    t = tmp_path / "t.jsonl"
    r = run_tender(mode, f"--trace={t}", guest("hello"), "Hello_Solo5")
    assert r.status == 0 and "SUCCESS" in r.out
    recs = _read(t)
    # native mode is overridden: every puts went through the traced handler
    puts = [x for x in recs if x.get("name") == "puts"]
    assert "".join(x["args"]["text"] for x in puts) == r.out
    assert all(x["event"] == "hypercall" and x["nr"] == 2 and x["result"] == {} for x in puts)
    assert recs[-2] == {**recs[-2], "event": "hypercall", "nr": 8, "name": "halt",
                        "args": {"status": 0, "cookie": 0}}
    assert recs[-1] == {"time": recs[-1]["time"], "event": "exit", "status": 0,
                        "exit_code": 0}
    times = [x["time"] for x in recs]
    assert times == sorted(times) and all(isinstance(x, int) for x in times)


def test_trace_is_deterministic(tmp_path: Path) -> None:
    runs = []
    for i in range(2):
        t = tmp_path / f"t{i}.jsonl"
        r = run_tender(f"--trace={t}", guest("exception"))
        assert r.status == 255
        runs.append(_read(t))
    assert _stable(runs[0]) == _stable(runs[1])
    assert [x["time"] for x in runs[0]] != [x["time"] for x in runs[1]]
    halt = runs[0][-2]
    assert halt["name"] == "halt" and halt["args"]["status"] == 255
    assert halt["args"]["trap_frame"]["cr2"] == 16 << 30
    assert runs[0][-1]["exit_code"] == 255


def test_vary_marks_clock_values(tmp_path: Path) -> None:
    t = tmp_path / "t.jsonl"
    r = run_tender(f"--trace={t}", guest("exit"), "exit 7")
    assert r.status == 7
    recs = _read(t)
    assert recs[-1]["status"] == 7
    # walltime, if the runtime asked for it, is marked as varying
    for rec in recs:
        if rec.get("name") == "walltime":
            assert rec["vary"] == ["nsecs"] and "nsecs" in rec["result"]


def test_trace_records_fatal_errors(tmp_path: Path) -> None:
    t = tmp_path / "t.jsonl"
    r = run_tender(f"--trace={t}", guest("wtext"))
    assert r.status == 1 and "host/guest translation fault" in r.err
    last = _read(t)[-1]
    assert last["event"] == "exit" and last["exit_code"] == 1
    assert "host/guest translation fault" in last["error"]


def test_bad_trace_path(tmp_path: Path) -> None:
    bad = tmp_path / "no" / "such" / "t.jsonl"
    r = run_tender(f"--trace={bad}", guest("hello"), "Hello_Solo5")
    assert r.status == 1 and r.stdout == b""
    assert r.err.splitlines() == [f"pytender: trace: cannot open {bad}: No such file or directory"]

