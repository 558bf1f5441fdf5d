"""The native launcher (csrc/launcher.c + tender/_launch.py) starts the
interpreter without site when the install's own directories hold the tender
and its dependencies (and with the cyclic collector paused until the guest
runs), and falls back to site otherwise, for every way
pytender gets installed: a venv, `pip install --user`, a system (non-venv)
prefix, an editable install. Each case boots hello through the installed
`pytender-hvt` with a --script that reports, from inside the tender, whether
site ran and where tender and cffi came from."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT, guest, require_kvm

from tender._launch import NEEDS

PROBE = """\
import gc, json, os, sys
import cffi, tender
info = {"no_site": sys.flags.no_site, "site": "site" in sys.modules, "tender": tender.__file__,
        "cffi": cffi.__file__, "path": sys.path, "gc": gc.isenabled(),
        "frozen": gc.get_freeze_count(), "stdlib": os.path.dirname(os.__file__)}
os.write(2, ("PROBE " + json.dumps(info) + "\\n").encode())
intercept = {}
"""
SITE = Path(sysconfig.get_paths()["purelib"])   # this venv's: the dependencies
PIP = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]


def test_needs_are_the_dependencies() -> None:
    """_launch.NEEDS: the top-level modules of pyproject's dependencies."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {d.split(">")[0].split("=")[0].strip().lower().replace("_", "-") for d in deps}
    provided = {top for top, dists in importlib.metadata.packages_distributions().items()
                if any(d.lower().replace("_", "-") in names for d in dists)}
    assert provided == NEEDS


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A wheel and an editable wheel, built from a copy of this checkout (an
    editable build writes the cffi module into its source tree, and this
    process has the checkout's loaded)."""
    tmp = tmp_path_factory.mktemp("launcher")
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                            "tender", "csrc", "setup.py", "pyproject.toml"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    src = tmp / "src"
    for name in files:
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    out = tmp / "wheels"
    built = []
    for hook in ("build_wheel", "build_editable"):    # one process each, as pip does
        code = f"import sys\nfrom setuptools import build_meta\nprint('BUILT', " \
               f"build_meta.{hook}(sys.argv[1]))\n"
        r = subprocess.run([sys.executable, "-c", code, str(out)], cwd=src,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        built.append(r.stdout.split("BUILT ")[-1].strip())
    wheel, editable = built
    return {"wheel": out / wheel, "editable": out / editable, "src": src}


def _install(wheel: Path, python: str, *extra: str, env: dict[str, str] | None = None) -> None:
    r = subprocess.run([*PIP, "--python", python, "install", "--no-deps", "--no-index", *extra,
                        str(wheel)], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr


def _link_deps(site: Path) -> None:
    """The dependencies, installed beside the tender (as symlinks to this
    venv's copies)."""
    site.mkdir(parents=True, exist_ok=True)
    for entry in SITE.iterdir():
        if entry.name.partition(".")[0] in NEEDS:
            (site / entry.name).symlink_to(entry)


def _venv(where: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True,
                   timeout=120)
    return where / "bin" / "python"


def _boot(exe: Path, tmp: Path, *command: str,
          env: dict[str, str] | None = None) -> dict[str, object]:
    require_kvm()
    probe = tmp / "probe.py"
    probe.write_text(PROBE)
    r = subprocess.run([str(exe), *command, "--mem=64", f"--script={probe}", guest("hello"),
                        "Hello_Solo5"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0 and "Hello, World" in r.stdout, r.stdout + r.stderr
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("PROBE ")]
    info: dict[str, object] = json.loads(line[6:])
    assert info["no_site"] == 1
    # Collector off for start-up, then on with start-up's objects frozen.
    assert info["gc"] is True and int(info["frozen"]) > 5000, info  # type: ignore[call-overload]
    # As under site: the standard library before the packages (a stray
    # enum or typing backport in site-packages must not shadow it).
    path = [str(p) for p in info["path"]]  # type: ignore[attr-defined]
    cffi_dir = os.path.dirname(os.path.dirname(str(info["cffi"])))
    assert path.index(str(info["stdlib"])) < path.index(cffi_dir), info
    return info


def _under(path: object, root: Path) -> bool:
    """As found on sys.path (not resolved: the dependencies are symlinks)."""
    return Path(os.path.normpath(str(path))).is_relative_to(root)


def _site(base: Path) -> Path:
    """The standard scheme's site-packages under `base` (venv, --user)."""
    return base / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"


def _venv_boot(wheel: Path, where: Path, tmp: Path) -> tuple[Path, dict[str, object]]:
    """A fresh venv with `wheel` and the dependencies: its site-packages and
    what a boot through its pytender-hvt reports."""
    _install(wheel, str(_venv(where)))
    _link_deps(_site(where))
    return _site(where), _boot(where / "bin" / "pytender-hvt", tmp)


def test_venv_install_starts_without_site(wheels: dict[str, Path], tmp_path: Path) -> None:
    site, info = _venv_boot(wheels["wheel"], tmp_path / "v", tmp_path)
    assert info["site"] is False
    assert _under(info["tender"], site) and _under(info["cffi"], site), info


def _user_env(base: Path) -> dict[str, str]:
    # A distribution's python refuses --user installs (PEP 668) unless told;
    # this one goes to a temporary user base.
    return {**os.environ, "PYTHONUSERBASE": str(base), "PIP_BREAK_SYSTEM_PACKAGES": "1"}


def test_user_install_starts_without_site(wheels: dict[str, Path], tmp_path: Path) -> None:
    """`pip install --user`: no python beside the launcher (it runs the one
    that built it, under -I, which never looks in the user site)."""
    base = tmp_path / "user"
    _install(wheels["wheel"], sys._base_executable, "--user", env=_user_env(base))
    _link_deps(_site(base))
    info = _boot(base / "bin" / "pytender-hvt", tmp_path)
    assert info["site"] is False
    assert _under(info["tender"], base) and _under(info["cffi"], base), info


def test_user_install_without_its_dependencies_falls_back_to_site(
        wheels: dict[str, Path], tmp_path: Path) -> None:
    """The dependencies elsewhere (here: the interpreter's own site): site
    runs after all, and the tender still comes from the user site."""
    base = tmp_path / "user"
    _install(wheels["wheel"], sys._base_executable, "--user", env=_user_env(base))
    info = _boot(base / "bin" / "pytender-hvt", tmp_path)
    assert info["site"] is True
    assert _under(info["tender"], base) and _under(info["cffi"], SITE), info


def _system_prefix(root: Path) -> Path:
    """A non-venv interpreter installed at `root`: a copy of the base
    executable, the standard library linked in, its own empty site-packages."""
    real = Path(sys._base_executable).resolve()
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    (root / "bin").mkdir(parents=True)
    lib = root / "lib" / version
    lib.mkdir(parents=True)
    for entry in stdlib.iterdir():
        if entry.name not in ("site-packages", "EXTERNALLY-MANAGED"):
            (lib / entry.name).symlink_to(entry)
    (lib / "site-packages").mkdir()
    shutil.copy2(real, root / "bin" / version)
    for alias in ("python3", "python"):
        (root / "bin" / alias).symlink_to(version)
    return root / "bin" / "python"


def test_system_install_starts_without_site(wheels: dict[str, Path], tmp_path: Path) -> None:
    python = _system_prefix(tmp_path / "sys")
    paths = json.loads(subprocess.run(
        [str(python), "-c", "import json, sys, sysconfig; print(json.dumps([sys.prefix, "
         "sys.base_prefix, sysconfig.get_path('purelib'), sysconfig.get_path('scripts')]))"],
        capture_output=True, text=True, check=True).stdout)
    prefix, base_prefix, purelib, scripts = (Path(p) for p in paths)
    assert prefix == base_prefix == tmp_path / "sys"    # not a venv: its own prefix
    _install(wheels["wheel"], str(python))
    _link_deps(purelib)
    info = _boot(scripts / "pytender-hvt", tmp_path)
    assert _under(info["tender"], purelib) and _under(info["cffi"], purelib), info
    # The launcher looks in SCRIPTS/../lib/pythonX.Y/site-packages, the
    # standard scheme; a distribution's own scheme (Debian's dist-packages)
    # falls back to site.
    standard = purelib == scripts.parent / "lib" / purelib.parent.name / "site-packages"
    assert info["site"] is (not standard), (info, purelib, scripts)


def test_editable_install_starts_without_site(wheels: dict[str, Path], tmp_path: Path) -> None:
    """The source tree is compiled into an editable install's launcher; it
    is not left on sys.path (the editable finder exposes only `tender`)."""
    site, info = _venv_boot(wheels["editable"], tmp_path / "e", tmp_path)
    assert info["site"] is False
    assert _under(info["tender"], wheels["src"]) and _under(info["cffi"], site), info
    assert str(wheels["src"]) not in [str(p) for p in info["path"]]  # type: ignore[attr-defined]


def test_no_tender_in_its_directories_falls_back_to_site(tmp_path: Path) -> None:
    """A launcher beside this venv's python whose site-packages holds only
    setuptools' editable finder for tender (no source tree compiled in):
    site runs, and its finder finds the checkout."""
    from test_signals import launcher

    exe = launcher(tmp_path)
    info = _boot(exe, tmp_path, "run")
    assert info["site"] is True and _under(info["tender"], ROOT), info

