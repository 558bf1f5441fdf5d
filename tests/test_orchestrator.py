"""examples/orchestrator.py, run for real: three guests in one process, the
failing one restarted by the Albatross policy, metrics over loopback."""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
from conftest import ROOT
from test_metrics import free_port, reap, scrape, value

EXAMPLE = ROOT / "examples" / "orchestrator.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("orchestrator", EXAMPLE)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["orchestrator"] = mod   # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_restart_policy_is_albatross() -> None:
    orch = _module()
    on, codes = orch.Policy(), orch.Policy(codes=frozenset({3}))
    assert [orch.should_restart(r, on) for r in (None, 0, 1, 60, 64, 2, 3, 255)] == [
        False, False, False, False, False, True, True, True]
    assert [orch.should_restart(r, codes) for r in (2, 3)] == [False, True]
    assert not orch.should_restart(3, orch.Policy(restart_on_fail=False))


@pytest.mark.usefixtures("kvm")
def test_orchestrator_runs_three_guests_and_restarts_the_failing_one(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "out"
    with out.open("wb") as fo:
        proc = subprocess.Popen([sys.executable, str(EXAMPLE), "--port", str(port), "--dir",
                                 str(tmp_path / "run")], cwd=ROOT, stdout=fo,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 120
        while True:
            text = out.read_text()
            if text.count("flaky: exit 3") == 3 and "clock: exit 0" in text:
                break
            assert proc.poll() is None, text
            assert time.monotonic() < deadline, text
            time.sleep(0.1)
        s = scrape(url)
        assert value(s, "orchestrator_restarts_total", guest="flaky") == 2
        assert value(s, "orchestrator_restarts_total", guest="clock") == 0
        assert value(s, "pytender_guest_running", guest="storage") == 1
        assert value(s, "pytender_guest_running", guest="clock") == 0
        assert value(s, "pytender_device_bytes_total", guest="storage", device="storage",
                     direction="write") == 1 << 20
        assert value(s, "pytender_hypercalls_total", guest="flaky", hypercall="halt") == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        reap(proc)
    lines = out.read_text().splitlines()
    assert lines[0] == f"metrics on {url}"
    assert "storage: stopped" in lines
    assert lines[-3:] == ["storage: 0 restarts", "clock: 0 restarts", "flaky: 2 restarts"]
