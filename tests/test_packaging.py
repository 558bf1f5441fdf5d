"""A normal (non-editable) `pip install .` gets the native launcher as its
commands too: the wheel carries it under .data/scripts, and pip installs
it unchanged (only a `#!python` first line would be rewritten)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import ROOT

COMMANDS = ("pytender", "pytender-hvt", "solo5-hvt")


def test_wheel_commands_are_the_launcher(tmp_path: Path) -> None:
    pip = [sys.executable, "-m", "pip", "-q"]
    # No build isolation (setuptools, wheel and cffi are in the test
    # environment): the same build, without downloading a build environment.
    r = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w",
                        str(tmp_path / "w"), str(ROOT)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    (whl,) = (tmp_path / "w").glob("pytender-*.whl")
    with zipfile.ZipFile(whl) as z:
        scripts = {Path(n).name: z.read(n) for n in z.namelist() if "/scripts/" in n}
    assert sorted(scripts) == sorted(COMMANDS)
    assert all(body[:4] == b"\x7fELF" for body in scripts.values())
    r = subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp_path / "t"), str(whl)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    exe = tmp_path / "t" / "bin" / "solo5-hvt"
    assert exe.read_bytes() == scripts["solo5-hvt"]
    # No `python` beside it in --target's bin/: the compiled-in interpreter.
    v = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert (v.returncode, v.stderr.splitlines()[-1:]) == (0, ["ABI version 2"]), v.stderr
