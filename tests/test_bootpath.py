"""What a plain CLI boot imports (issue 10): none of the tooling. Each of
these costs start-up time and RSS on every `pytender run`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import ROOT, guest, require_kvm

# Imported only by tooling, debug features, interceptors, devices or errors.
NOT_ON_THE_BOOT_PATH = (
    "elftools", "cstruct", "json", "socket", "selectors", "tender.intercept", "tender.script",
    "tender.debug", "tender.devices.pipe", "tender.fuzz", "importlib.util", "tender.backend",
    "tender.bhyve", "tender.freebsd",
    # ~1.5 ms and ~0.7 MiB: KVM structs are cffi's (csrc/kvm.cdef), not ctypes'.
    "ctypes",
    # Device modules: only a run with such a device (or its net ring) needs them.
    "tender.devices.block", "tender.devices.net", "tender.devices.ring", "tender.devices.disk",
    # The standard library the code base is written with, but a boot does
    # without: tender.record in place of dataclasses (which imports inspect,
    # ast, dis, tokenize); typing only as `TYPE_CHECKING = False` then
    # `if TYPE_CHECKING: from typing import ...` (not typing's own
    # TYPE_CHECKING, whose import is the cost); site's editable
    # finder (pathlib, urllib, ipaddress) is skipped by the launcher; the
    # stop flag, locks and context managers do without threading/contextlib.
    "dataclasses", "inspect", "ast", "dis", "tokenize", "typing", "pathlib", "urllib",
    "ipaddress", "importlib.util", "site", "threading", "contextlib",
    # ~0.4 MiB and ~1.7 ms: a run whose options are all plain prefixes
    # (--mem=..., modules.options.plain) matches them without re.
    "re",
)

_RUN = """
import sys
from tender.cli import run_hvt
status = run_hvt("pytender-hvt", sys.argv[1:])
loaded = sorted(m for m in sys.modules if any(m == n or m.startswith(n + ".") for n in NAMES))
sys.stdout.write(f"status={status} loaded={loaded}\\n")
"""


def test_hello_boot_imports_no_tooling() -> None:
    require_kvm()
    code = f"NAMES = {NOT_ON_THE_BOOT_PATH!r}\n" + _RUN
    r = subprocess.run([sys.executable, "-I", "-S", "-c",
                        f"import sys; sys.path[:0] = {sys.path!r}\n" + code,
                        "--mem=64", guest("hello"), "Hello_Solo5"],
                       capture_output=True, text=True, timeout=120)
    assert "**** Hello, World ****" in r.stdout, r.stdout + r.stderr
    assert r.stdout.endswith("status=0 loaded=[]\n"), r.stdout + r.stderr


def test_only_bhyve_and_dumpcore_import_ctypes() -> None:
    """What keeps ctypes off every run's path, net device included (its
    ethtool buffer is cffi's): only the bhyve backend (never imported on
    Linux) and --dumpcore's mincore() call import it."""
    import ast

    users = set()
    for path in (ROOT / "tender").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) else [])
            if any((n or "").split(".")[0] == "ctypes" for n in names):
                users.add(path.relative_to(ROOT / "tender").as_posix())
    assert {u for u in users if not u.startswith("bhyve/")} == {"debug/dumpcore.py"}


def test_tooling_still_uses_the_libraries() -> None:
    """The reference decoders are the libraries: `python -m tender.manifest
    dump` loads pyelftools and cstruct (and prints the manifest)."""
    code = (f"import sys, runpy; sys.argv = ['tender.manifest', 'dump', {guest('blk')!r}]\n"
            "try:\n    runpy.run_module('tender.manifest', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "sys.stderr.write(str(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'elftools', 'cstruct'})))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert '"name": "storage"' in r.stdout, r.stdout + r.stderr
    assert r.stderr.endswith("['cstruct', 'elftools']"), r.stderr


# Modules whose source or bytecode the launcher's own start must not open.
_LAUNCHER_AVOIDS = ("site", "dataclasses", "inspect", "typing", "pathlib", "ipaddress",
                    "urllib", "fnmatch", "threading", "contextlib",
                    "__editable___pytender_0_1_0_finder")


def test_installed_launcher_boot_opens_none_of_it(tmp_path: Path) -> None:
    """The installed command (the native launcher, no site when the install
    holds everything): the files a hello boot opens, as strace sees them."""
    require_kvm()
    out = tmp_path / "trace"
    exe = Path(sys.executable).parent / "pytender-hvt"
    r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=open,openat", "-o", str(out),
                        str(exe), "--mem=64", guest("hello"), "Hello_Solo5"],
                       capture_output=True, text=True, timeout=120)
    assert "**** Hello, World ****" in r.stdout, r.stdout + r.stderr
    opened = [line.split('"')[1] for line in out.read_text().splitlines() if '"' in line]
    assert any(p.endswith((".pyc", ".py")) and "/tender/" in p for p in opened), opened
    seen = [p for p in opened for name in _LAUNCHER_AVOIDS
            if f"/{name}." in p or f"/{name}/" in p]
    assert seen == [], seen
