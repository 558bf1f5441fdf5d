"""`pytender run --script=FILE.py` (issue #8, part 2): a file that defines
`intercept = {...}`, through the real CLI; bad use is one line and exit 1."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT, guest, require_kvm, run_tender


def script(tmp_path: Path, text: str) -> str:
    path = tmp_path / "icpt.py"
    path.write_text(text)
    return str(path)


def one_error(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pytender: "), err
    assert "Traceback" not in err
    return lines[0]


def test_script_fails_the_third_write(tmp_path: Path, handlers: str) -> None:
    require_kvm()
    img = tmp_path / "disk.img"
    img.write_bytes(bytes(8 * 512))
    r = run_tender(handlers, f"--script={ROOT / 'examples' / 'fail_third_write.py'}",
                   f"--block:storage={img}", guest("blk"), "write", "1")
    assert r.status == 1 and r.err == ""
    assert "FAILURE: write sector 2: ret 3\n" in r.out
    data = img.read_bytes()
    assert data[512:520] == (1).to_bytes(8, "little") and data[1024:] == bytes(7 * 512 - 512)


@pytest.mark.parametrize("text,why", [
    (None, r"--script: .*icpt.py: no such file"),
    ("x = 1\n", r"does not define intercept = \{Hypercall.NAME: function, ...\}"),
    ("intercept = [1]\n", r"does not define intercept"),
    ("raise RuntimeError('bad config')\n", r"raised RuntimeError: bad config"),
    ("import sys\nsys.exit(3)\n", r"raised SystemExit: 3"),
    ("def f(:\n", r"raised SyntaxError"),
    ("intercept = {'BLOK_WRITE': print}\n", r"interceptor key 'BLOK_WRITE' is not a hypercall"),
    ("intercept = {99: print}\n", r"interceptor key 99 is not a hypercall"),
    ("from tender import Hypercall\nintercept = {Hypercall.PUTS: 'print'}\n",
     r"interceptor for PUTS is not callable"),
])
def test_bad_script(tmp_path: Path, text: str | None, why: str) -> None:
    require_kvm()
    path = script(tmp_path, text) if text is not None else str(tmp_path / "icpt.py")
    r = run_tender(f"--script={path}", guest("hello"), "Hello_Solo5")
    assert r.status == 1
    assert re.search(why, one_error(r.err)), r.err
    assert r.out == ""      # refused before the guest ran


@pytest.mark.parametrize("body,why", [
    ("    raise KeyError('x')\n", r"^pytender: PUTS interceptor .*\.f raised KeyError: 'x'$"),
    ("    return 'loud'\n",
     r"^pytender: PUTS interceptor .*\.f returned 'loud'; it must return None or Result.OK"),
])
def test_interceptor_failure_on_the_cli(tmp_path: Path, handlers: str, body: str,
                                        why: str) -> None:
    require_kvm()
    path = script(tmp_path, f"from tender import Hypercall\ndef f(call):\n{body}"
                            "intercept = {Hypercall.PUTS: f}\n")
    r = run_tender(handlers, f"--script={path}", guest("hello"), "Hello_Solo5")
    assert r.status == 1 and re.search(why, one_error(r.err)), r.err


def test_script_runs_unsandboxed_and_sees_every_call(tmp_path: Path) -> None:
    """An interceptor may open files (no seccomp with a script) and counts
    its calls with seq."""
    require_kvm()
    log = tmp_path / "log"
    path = script(tmp_path, "from tender import Hypercall\n"
                            "def f(call):\n"
                            f"    with open({str(log)!r}, 'a') as fh:\n"
                            "        fh.write(f'{call.seq}\\n')\n"
                            "intercept = {Hypercall.PUTS: f}\n")
    r = run_tender(f"--script={path}", guest("hello"), "Hello_Solo5")
    assert r.status == 0 and "Hello, World" in r.out
    seqs = log.read_text().split()
    assert seqs == [str(i) for i in range(1, len(seqs) + 1)] and len(seqs) >= 2
