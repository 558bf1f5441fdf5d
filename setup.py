"""Hands setuptools what pyproject.toml cannot express: the cffi extension
and the native launcher (csrc/launcher.c) as the installed commands.

A `#!python` console script dies on a SIGTERM that arrives before its
interpreter has installed a handler, and cannot start in urunc's monitor
root; the launcher blocks the signals at its first instruction. It is
built in place of build_scripts, which `pip install .` and `pip install -e
.` (setuptools' editable wheel installs scripts as non-editable) both run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup

try:
    from setuptools.command.build_scripts import build_scripts
except ImportError:     # older setuptools: its vendored distutils' command
    from distutils.command.build_scripts import build_scripts

COMMANDS = ("pytender", "pytender-hvt", "solo5-hvt")
SOURCE = "csrc/launcher.c"


class BuildLauncher(build_scripts):  # type: ignore[misc]
    """Compiles SOURCE once and writes it under each command name."""

    def run(self) -> None:
        out = Path(self.build_dir)
        out.mkdir(parents=True, exist_ok=True)
        exe = out / COMMANDS[0]
        # Fallback interpreter for a launcher installed where no `python`
        # sits beside it (e.g. `pip install --user`): the one building it.
        python = _c_string(sys.executable)
        # An editable install's packages are this source tree (setuptools'
        # finder maps it; the launcher starts without site, so it is told).
        editable = "editable_wheel" in self.distribution.command_obj
        src = _c_string(str(Path(__file__).resolve().parent) if editable else "")
        cmd = [_cc(), "-O2", "-Wall", f'-DPYTENDER_PYTHON="{python}"',
               f'-DPYTENDER_SRC="{src}"', "-o", str(exe), SOURCE]
        # Static: no dynamic loader runs before the signals are blocked.
        if subprocess.run([*cmd[:1], "-static", *cmd[1:]], check=False).returncode != 0:
            subprocess.run(cmd, check=True)
        for name in COMMANDS[1:]:
            shutil.copy2(exe, out / name)

    def get_outputs(self) -> list[str]:
        return [str(Path(self.build_dir) / name) for name in COMMANDS]


def _c_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _cc() -> str:
    import sysconfig

    return (sysconfig.get_config_var("CC") or "cc").split()[0]


setup(
    cffi_modules=["tender/_build.py:ffibuilder"],
    # Non-empty so that build/install run build_scripts; BuildLauncher reads
    # the launcher source itself.
    scripts=[SOURCE],
    cmdclass={"build_scripts": BuildLauncher},
)
