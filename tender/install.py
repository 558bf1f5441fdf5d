"""`pytender install-monitor --prefix DIR`: a self-contained tender for
urunc's monitor root (ORCHESTRATORS.md 1.6).

urunc mounts only the tender file, /lib, /lib64 and /usr/lib (read-only),
so with DIR under /usr/lib everything the tender needs must be in DIR or
come from the distribution's python3.11 packages:

  DIR/solo5-hvt   the native launcher (csrc/launcher.c, as pip installed it)
  DIR/python      a copy of the host's interpreter (default /usr/bin/python3.11;
                  it finds its standard library in /usr/lib/python3.11)
  DIR/lib/        tender and its dependencies, byte-compiled (the mounts are
                  read-only, so nothing can be compiled at run time)

The launcher sees DIR/lib/tender and starts DIR/python isolated, without
site-packages and without writing bytecode."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tender.errors import TenderError, UsageError

DEFAULT_PYTHON = Path("/usr/bin/python3.11")
# Top-level modules copied into DIR/lib: the tender and its run-time
# dependencies (pycparser is only needed to build cffi modules, not to load them).
MODULES = ("tender", "cffi", "_cffi_backend", "elftools", "cstruct", "prometheus_client")
LAUNCHER = "solo5-hvt"
USAGE = "usage: pytender install-monitor --prefix DIR [ --python INTERPRETER ]\n"


class InstallError(TenderError):
    """install-monitor could not build DIR (exit status 1)."""


@dataclass(frozen=True)
class InstallOptions:
    prefix: Path
    python: Path = DEFAULT_PYTHON


def parse_args(argv: list[str]) -> InstallOptions:
    """Pure: `--prefix DIR` (or `--prefix=DIR`) and optional `--python PATH`."""
    values: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        key, eq, value = arg.partition("=")
        if key not in ("--prefix", "--python"):
            raise UsageError(f"install-monitor: unknown argument {arg!r}")
        if not eq:
            if i + 1 >= len(argv):
                raise UsageError(f"install-monitor: {key} needs a value")
            i += 1
            value = argv[i]
        if not value:
            raise UsageError(f"install-monitor: {key} needs a value")
        values[key] = value
        i += 1
    if "--prefix" not in values:
        raise UsageError("install-monitor: --prefix DIR is required")
    prefix = Path(values["--prefix"])
    if not prefix.is_absolute():
        raise UsageError("install-monitor: --prefix must be an absolute path")
    return InstallOptions(prefix, Path(values.get("--python", str(DEFAULT_PYTHON))))


def module_source(name: str) -> Path:
    """Where the running interpreter loads a top-level module from."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise InstallError(f"install-monitor: module {name} is not installed")
    if spec.submodule_search_locations:
        return Path(spec.origin).parent
    return Path(spec.origin)


def installed_launcher() -> Path:
    """The launcher pip built for this installation (setup.py)."""
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        exe = Path(folder) / LAUNCHER
        if exe.is_file() and exe.read_bytes()[:4] == b"\x7fELF":
            return exe
    raise InstallError("install-monitor: the native launcher is not installed "
                       "(reinstall pytender with pip)")


def _check_interpreter(python: Path) -> None:
    """The copied extension modules are built for this interpreter's ABI."""
    if not os.access(python, os.X_OK):
        raise InstallError(f"install-monitor: {python}: no such interpreter "
                           "(Debian: apt-get install python3.11-minimal libpython3.11-stdlib)")
    probe = "import sys; print(sys.implementation.cache_tag)"
    tag = subprocess.run([str(python), "-I", "-c", probe],
                         capture_output=True, text=True, check=False).stdout.strip()
    if tag != sys.implementation.cache_tag:
        raise InstallError(f"install-monitor: {python} is {tag or 'not a usable Python'}, "
                           f"pytender's extensions are built for {sys.implementation.cache_tag}")


def _copy_module(src: Path, lib: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, lib / src.name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "_build.py"))
    else:
        shutil.copy2(src, lib / src.name)


def _stage(opts: InstallOptions, stage: Path, check: Callable[[], None]) -> None:
    lib = stage / "lib"
    lib.mkdir(parents=True)
    for name in MODULES:
        _copy_module(module_source(name), lib)
        check()
    shutil.copy2(opts.python.resolve(), stage / "python")
    shutil.copy2(installed_launcher(), stage / LAUNCHER)
    check()
    # Compiled by the interpreter that will load them, with the final paths
    # in the code objects.
    subprocess.run([str(stage / "python"), "-I", "-m", "compileall", "-q",
                    "-s", str(stage), "-p", str(opts.prefix), str(lib)],
                   check=True, capture_output=True)
    for path in (stage, *stage.rglob("*")):
        path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)


def _verify(prefix: Path) -> None:
    """The installed tender starts and finds its compiled extension."""
    version = subprocess.run([str(prefix / LAUNCHER), "--version"],
                             capture_output=True, text=True, check=False)
    if version.returncode != 0 or "ABI version" not in version.stderr:
        raise InstallError(f"install-monitor: {prefix / LAUNCHER} --version failed: "
                           f"{version.stderr.strip()}")
    probe = subprocess.run([str(prefix / "python"), "-IBS", "-c",
                            f"import sys; sys.path.insert(0, {str(prefix / 'lib')!r}); "
                            "import tender.vm, tender.linux.sandbox, tender._vcpu"],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        lines = probe.stderr.strip().splitlines() or ["no output"]
        raise InstallError(f"install-monitor: the installed tender cannot load: {lines[-1]}")


def _never() -> None:
    pass


def install_monitor(opts: InstallOptions, check: Callable[[], None] = _never) -> Path:
    """Build opts.prefix afresh; returns the path of the tender to configure.
    CHECK runs between steps and may raise (the CLI's SIGINT/SIGTERM latch):
    an interrupted install leaves an existing DIR as it was."""
    _check_interpreter(opts.python)
    prefix = opts.prefix
    if prefix.exists() and not (prefix / "lib" / "tender").is_dir():
        raise InstallError(f"install-monitor: {prefix} exists and is not a pytender monitor")
    made = next(p for p in prefix.parents if p.exists())
    if not made.is_dir():
        raise InstallError(f"install-monitor: cannot create {prefix}: {made} is not a directory")
    stage = prefix.with_name(f".{prefix.name}.new-{os.getpid()}")
    try:
        prefix.parent.mkdir(parents=True, exist_ok=True)
        _stage(opts, stage, check)
        check()
        if prefix.exists():
            shutil.rmtree(prefix)
        stage.rename(prefix)
    except OSError as exc:
        raise InstallError(f"install-monitor: cannot create {prefix}: "
                           f"{exc.strerror or exc}") from None
    except subprocess.CalledProcessError as exc:
        raise InstallError(f"install-monitor: {exc}") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    _verify(prefix)
    # A signal that came during the check still ends the command with exit 1
    # (the install itself is complete and valid by then).
    check()
    return prefix / LAUNCHER
