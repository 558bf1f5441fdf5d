"""The seccomp sandbox installed before the vCPU loop (spec 8.1)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, guest, tender_cmd


def _child(code: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60,
                          cwd=ROOT)


def test_filter_kills_a_forbidden_syscall() -> None:
    r = _child("import os\nfrom tender import sandbox\nsandbox.enter()\n"
               "os.write(1, b'inside\\n')\nos.open('/etc/hostname', os.O_RDONLY)\n"
               "os.write(1, b'escaped\\n')\n")
    assert r.returncode == -signal.SIGSYS, r
    assert r.stdout == b"inside\n"


def test_filter_kills_a_forbidden_ioctl() -> None:
    r = _child("import fcntl, os, termios\nfrom tender import sandbox\nsandbox.enter()\n"
               "os.write(1, b'inside\\n')\nfcntl.ioctl(1, termios.FIONREAD, b'xxxx')\n")
    assert r.returncode == -signal.SIGSYS, r


def _seccomp_mode(*args: str) -> str:
    proc = subprocess.Popen(tender_cmd("--mem=64", *args, guest("time")),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()     # the guest runs, so the tender is in its loop
        time.sleep(0.3)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        return next(line.split()[1] for line in status.splitlines()
                    if line.startswith("Seccomp:"))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


@pytest.mark.usefixtures("kvm")
def test_cli_runs_the_guest_sandboxed(tmp_path: Path) -> None:
    assert _seccomp_mode() == "2"
    assert _seccomp_mode("--handlers=python") == "2"
    # The debug features are the exception, as solo5-hvt-debug.
    assert _seccomp_mode(f"--trace={tmp_path}/t.jsonl") == "0"


def test_tgkill_only_towards_our_own_threads() -> None:
    # Own thread: allowed (the ring thread kicks the vCPU thread this way).
    r = _child("import os, signal, threading\nfrom tender import sandbox\n"
               "signal.signal(signal.SIGUSR2, lambda *a: None)\nsandbox.enter()\n"
               "signal.pthread_kill(threading.get_ident(), signal.SIGUSR2)\n"
               "os.write(1, b'kicked\\n')\n")
    assert r.returncode == 0 and r.stdout == b"kicked\n", r
    # Another process (here: our parent, with tgkill to its pid): killed.
    r = _child("import os, signal, ctypes\nfrom tender import sandbox\nsandbox.enter()\n"
               "libc = ctypes.CDLL(None)\nos.write(1, b'inside\\n')\n"
               "libc.syscall(234, os.getppid(), os.getppid(), 0)\n"
               "os.write(1, b'escaped\\n')\n")
    assert r.returncode == -signal.SIGSYS, r
    assert r.stdout == b"inside\n"
