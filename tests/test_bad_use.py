"""Review of issues #8 and #12 against their texts: the README's Python
snippets run as written, and bad use (scripts, interceptors, Python disks,
install-monitor, the pytender command) is one typed line, exit 1."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, guest, require_kvm, run_tender

from tender import BlockSpec, Call, InterceptError, Tender, VmConfig
from tender.errors import DeviceError, UsageError

MARKED = "<!-- example: "
SNIPPET = re.compile(r"(<!-- example: \S+ -->\n)?```python\n(.*?)```\n", re.S)


def unmarked_snippets() -> list[str]:
    """README Python snippets that are not copies of an examples/ file
    (those run in test_examples.py, test_plugin.py and test_script.py)."""
    found = SNIPPET.findall((ROOT / "README.md").read_text())
    return [body for mark, body in found if not mark]


def test_readme_has_unmarked_snippets() -> None:
    # The Library and the Python-backed devices snippets.
    assert len(unmarked_snippets()) >= 2


@pytest.mark.parametrize("index", range(len(unmarked_snippets())))
def test_readme_snippet_runs_as_written(tmp_path: Path, index: int) -> None:
    """Pasted into a file in a fresh directory next to the built guests."""
    require_kvm()
    (tmp_path / "guests").symlink_to(ROOT / "guests")
    (tmp_path / "snippet.py").write_text(unmarked_snippets()[index])
    r = subprocess.run([sys.executable, "snippet.py"], cwd=tmp_path, capture_output=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]


def one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if not line.startswith("GUEST:")]
    assert len(lines) == 1 and lines[0].startswith("pytender: "), err
    return lines[0]


# --- --script and interceptors: BaseException is bad use too -----------------
@pytest.mark.parametrize("raise_", ["SystemExit(0)", "SystemExit(7)", "KeyboardInterrupt()",
                                    "GeneratorExit()"])
def test_interceptor_raising_base_exception(tmp_path: Path, raise_: str) -> None:
    """sys.exit(0) in an interceptor made the tender exit 0 with the guest
    cut short; KeyboardInterrupt gave a traceback and 130."""
    require_kvm()
    path = tmp_path / "icpt.py"
    path.write_text(f"def f(call):\n    raise {raise_}\n\nintercept = {{'walltime': f}}\n")
    r = run_tender(f"--script={path}", guest("time"), "wall")
    assert r.status == 1, r.output
    assert re.fullmatch(rf"pytender: WALLTIME interceptor \S+\.f raised {raise_.split('(')[0]}.*",
                        one_error(r.err)), r.err
    assert "time: walltime" not in r.out


@pytest.mark.parametrize("raise_", ["KeyboardInterrupt()", "GeneratorExit()"])
def test_script_raising_base_exception_on_import(tmp_path: Path, raise_: str) -> None:
    require_kvm()
    path = tmp_path / "icpt.py"
    path.write_text(f"raise {raise_}\n")
    r = run_tender(f"--script={path}", guest("hello"), "Hello_Solo5")
    assert r.status == 1 and r.out == ""
    assert f"icpt.py: raised {raise_[:-2]}" in one_error(r.err)


def test_script_is_a_directory(tmp_path: Path) -> None:
    require_kvm()
    r = run_tender(f"--script={tmp_path}", guest("hello"), "Hello_Solo5")
    assert r.status == 1 and r.out == ""
    assert one_error(r.err) == f"pytender: --script: {tmp_path}: is a directory"


def test_intercept_that_is_not_a_mapping() -> None:
    def f(call: Call) -> None:
        return None

    with pytest.raises(InterceptError, match=r"intercept must be a mapping"):
        Tender(VmConfig(kernel=guest("hello")), intercept=[f])  # type: ignore[arg-type]


# --- BlockSpec(disk=...) with objects that are not good disks ----------------
class BadDisk:
    """A BlockDisk whose read or write goes wrong as MODE says."""

    capacity = 8 * 512
    block_size = 512

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.buf = bytearray(self.capacity)

    def read(self, offset: int, length: int) -> bytes:
        if self.mode == "read-raises":
            raise ValueError("no such sector here")
        if self.mode == "read-returns-none":
            return None  # type: ignore[return-value]
        return bytes(self.buf[offset : offset + length])

    def write(self, offset: int, data: bytes) -> None:
        if self.mode == "write-raises":
            raise RuntimeError("disk on fire")
        self.buf[offset : offset + len(data)] = data

    def sync(self) -> None:
        pass


def run_blk(disk: object) -> int:
    config = VmConfig(kernel=guest("blk"), mem=32 << 20,
                      blocks=(BlockSpec("storage", disk=disk),))  # type: ignore[arg-type]
    return Tender(config).run().exit_code


def test_disk_that_is_not_a_block_disk(kvm: None) -> None:
    with pytest.raises(UsageError, match=r"^block device 'storage': .*not a BlockDisk"):
        run_blk(object())


@pytest.mark.parametrize("mode,why", [
    ("read-raises", r"^storage: the disk's read raised ValueError: no such sector here$"),
    ("read-returns-none", r"^storage: the disk's read returned NoneType, not bytes$"),
    ("write-raises", r"^storage: the disk's write raised RuntimeError: disk on fire$"),
])
def test_disk_object_that_fails(kvm: None, mode: str, why: str) -> None:
    """A user's disk going wrong is a typed one-line error naming the
    device, as an interceptor going wrong is."""
    with pytest.raises(DeviceError) as info:
        run_blk(BadDisk(mode))
    assert re.match(why, info.value.message), info.value.message


# --- the pytender command and install-monitor --------------------------------
def pytender(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "pytender"), *args],
                          capture_output=True, text=True, timeout=120)


def test_unknown_pytender_command() -> None:
    r = pytender("rnu", guest("hello"))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.splitlines()[0] == "pytender: unknown command 'rnu' (run, install-monitor)"
    assert "Traceback" not in r.stderr


def test_install_monitor_prefix_that_cannot_be_made(tmp_path: Path) -> None:
    """It said `[Errno 20] Not a directory: '.../.mon.new-PID'` (or `File exists`)."""
    (tmp_path / "file").write_text("")
    r = pytender("install-monitor", "--prefix", str(tmp_path / "file" / "mon"))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.splitlines() == [
        f"pytender: install-monitor: cannot create {tmp_path / 'file' / 'mon'}: "
        f"{tmp_path / 'file'} is not a directory"]
    assert list(tmp_path.iterdir()) == [tmp_path / "file"]


# --- SIGTERM while the user's Python runs -------------------------------------
@pytest.mark.parametrize("where", ["interceptor", "import"])
def test_sigterm_does_not_wait_for_a_blocked_script(tmp_path: Path, where: str) -> None:
    """It waited for the script: an interceptor or a script import that blocks
    held a SIGTERM (Albatross, urunc as PID 1) until it returned. The third
    block write blocks; the first two are on the image after the signal."""
    require_kvm()
    path = tmp_path / "icpt.py"
    if where == "interceptor":
        path.write_text("import time\n\ndef f(call):\n    if call.seq == 3:\n"
                        "        print('BLOCKED', flush=True)\n        time.sleep(3600)\n\n"
                        "intercept = {'block_write': f}\n")
    else:
        path.write_text("import time\nprint('BLOCKED', flush=True)\ntime.sleep(3600)\n"
                        "intercept = {}\n")
    img = tmp_path / "disk.img"
    img.write_bytes(bytes(8 * 512))
    proc = subprocess.Popen([str(Path(sys.executable).parent / "solo5-hvt"),
                             f"--script={path}", f"--block:storage={img}", guest("blk"),
                             "write", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line == b"BLOCKED\n":
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 1
    assert err.decode().splitlines()[-1:] == ["solo5-hvt: Exiting on signal 15"]
    assert "Traceback" not in err.decode()
    if where == "interceptor":
        data = img.read_bytes()
        assert data[512:520] == (1).to_bytes(8, "little") and data[1024:] == bytes(6 * 512)
