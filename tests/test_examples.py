"""examples/ run as their header comments say, against real guests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, guest, require_kvm, run_tender

from tender import NetSpec, Tender, VmConfig
from tender.devices import FramePipe

EXAMPLES = ROOT / "examples"


@pytest.mark.parametrize("name,tail", [
    ("answer_ping.py", b"ping: 3 replies\nSUCCESS\nanswered ARP and 3 pings\n"),
    ("intercept_library.py", b"FAILURE: write sector 2: ret 3\n"),
])
def test_program_example(name: str, tail: bytes) -> None:
    require_kvm()
    proc = subprocess.run([sys.executable, str(EXAMPLES / name)], cwd=ROOT, capture_output=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stdout.endswith(tail) and proc.stderr == b""


def test_frozen_clock_script(handlers: str) -> None:
    require_kvm()
    r = run_tender(handlers, f"--script={EXAMPLES / 'frozen_clock.py'}", guest("time"), "wall")
    assert r.status == 0 and r.err == ""
    assert "time: walltime 1700000000000000000 ns, then 1700000000000000000 ns\n" in r.out


def test_ping_guest_fails_when_nobody_answers(tmp_path: Path) -> None:
    """The examples' pings succeed because Python answers them (5 s wait)."""
    require_kvm()
    out_path = tmp_path / "console"
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT)
    try:
        out = Tender(VmConfig(kernel=guest("net"), mem=32 << 20,
                              args=(b"10.0.0.2", b"ping", b"10.0.0.1", b"1"),
                              nets=(NetSpec("service0", pipe=FramePipe()),)),
                     console_fd=fd).run()
    finally:
        os.close(fd)
    assert out.exit_code == 1
    assert out_path.read_text().endswith("FAILURE: no ARP reply from the peer\n")
