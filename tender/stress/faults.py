"""A full and a failing backing store under a running guest (root only).

Each scenario runs in a private mount namespace (`unshare --mount`), so its
file systems disappear with it, whatever happens:

* full: a 64 KiB tmpfs holding a sparse 1 MiB image; the `records` guest
  writes one record per 4 KiB page until the tmpfs is full. Writes past
  that get EUNSPEC, the guest goes on, reads its acknowledged records back
  and exits 2; the tender says nothing.
* eio: an ext4 file system on a loop device (`mount -o loop`, auto-cleared
  on unmount) holding a 64 KiB image; after the guest's 5th record the
  harness shuts the file system down (EXT4_IOC_SHUTDOWN, the kernel's own
  "the disk is gone" switch), so every later pwrite, pread and the final
  fdatasync fail with EIO. The guest gets EUNSPEC for each; the tender
  ends with one line (`... fdatasync ... failed: Input/output error`),
  exit 1. (This kernel has no device-mapper, so no dm-error/dm-flakey.)

The outer half (`run`) judges what the inner half (`python -m
tender.stress.faults SCENARIO HANDLERS KERNEL`, inside the namespace)
reports as JSON."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tender.config import HandlerMode

SCENARIOS = ("full", "eio")
EXT4_IOC_SHUTDOWN = 0x8004587D      # _IOR('X', 125, __u32)
EXT4_GOING_FLAGS_NOLOGFLUSH = 2
TIMEOUT = 120.0
_FAIL = re.compile(rb"^fail (\d+) ret=(\d+)$", re.M)
_ACK = re.compile(rb"^ack (\d+)$", re.M)
_SUMMARY = re.compile(rb"^records: acked (\d+) failed (\d+)$", re.M)


@dataclass(frozen=True)
class FaultReport:
    scenario: str
    handlers: str
    status: int
    acked: int
    failed: int
    stderr: str
    failures: tuple[str, ...]


def missing_tools(scenario: str = "eio") -> list[str]:
    """What this host lacks to run a scenario (empty: all there)."""
    need = ["unshare", "mount", "umount"] + (["mkfs.ext4"] if scenario == "eio" else [])
    out = [t for t in need if shutil.which(t) is None]
    if os.geteuid() != 0:
        out.append("root")
    elif not out and subprocess.run(["unshare", "--mount", "true"],
                                    capture_output=True).returncode != 0:
        out.append("a private mount namespace (unshare --mount)")
    if scenario == "eio" and not os.path.exists("/dev/loop-control"):
        out.append("loop devices")
    return out


def run(scenario: str, handlers: HandlerMode, kernel: str) -> FaultReport:
    cmd = ["unshare", "--mount", "--propagation", "private", sys.executable, "-m",
           "tender.stress.faults", scenario, handlers.value, os.path.abspath(kernel)]
    p = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        err = p.stderr.decode(errors="replace").strip()
        return FaultReport(scenario, handlers.value, -1, 0, 0, err,
                           (f"harness failed ({p.returncode}): {err[-300:]}",))
    res = json.loads(p.stdout)
    return judge(scenario, handlers.value, res["status"], res["stdout"].encode(),
                 res["stderr"].encode())


def judge(scenario: str, handlers: str, status: int, out: bytes, err: bytes) -> FaultReport:
    why: list[str] = []
    acks = [int(m.group(1)) for m in _ACK.finditer(out)]
    fails = [(int(m.group(1)), int(m.group(2))) for m in _FAIL.finditer(out)]
    summary = _SUMMARY.search(out)
    text = err.decode(errors="replace")
    lines = [ln for ln in text.splitlines() if ln]
    if "Traceback" in text:
        why.append("traceback on stderr")
    if summary is None:
        why.append("the guest did not finish its run")
    if not acks or not fails:
        why.append(f"want some writes acknowledged and some failed: {len(acks)} acks, "
                   f"{len(fails)} failures")
    if any(ret != 3 for _, ret in fails):
        why.append(f"a failed write did not get EUNSPEC (3): {fails[:5]}")
    if acks and fails and max(acks) > min(i for i, _ in fails) and scenario == "eio":
        why.append("a write was acknowledged after the file system had failed")
    if b"mismatch" in out:
        why.append("an acknowledged record read back wrong")
    if scenario == "full":
        if status != 2 or lines:
            why.append(f"want exit 2 and a silent tender, got {status}: {lines}")
    else:
        one = len(lines) == 1 and "fdatasync" in lines[0] and "Input/output error" in lines[0]
        if status != 1 or not one:
            why.append(f"want exit 1 and one fdatasync line, got {status}: {lines}")
    return FaultReport(scenario, handlers, status, len(acks), len(fails), text.strip(),
                       tuple(why))


# --- the inner half: runs inside the private mount namespace ----------------------
def _tender(handlers: str, img: Path, kernel: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "tender.cli", "run", "--mem=8", f"--handlers={handlers}",
            f"--block:storage={img}", kernel, *args]


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


def _inner_full(handlers: str, kernel: str, d: Path) -> subprocess.CompletedProcess[bytes]:
    _mount("-t", "tmpfs", "-o", "size=64k", "pytender-full", str(d))
    try:
        img = d / "disk"
        with open(img, "wb") as f:
            f.truncate(1 << 20)         # sparse: every new page needs space
        # 64 records, one per 4 KiB page (stride 8 sectors): 16 pages fit.
        return subprocess.run(_tender(handlers, img, kernel, "64", "8"), capture_output=True,
                              timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    finally:
        subprocess.run(["umount", str(d)], check=False)


def _inner_eio(handlers: str, kernel: str, d: Path) -> subprocess.CompletedProcess[bytes]:
    backing = d / "fs.img"
    with open(backing, "wb") as f:
        f.truncate(8 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(backing)], check=True, capture_output=True)
    mnt = d / "mnt"
    mnt.mkdir()
    _mount("-o", "loop", str(backing), str(mnt))
    try:
        img = mnt / "disk"
        with open(img, "wb") as f:      # allocated, so only the shutdown can fail it
            f.write(bytes(64 << 10))
            f.flush()
            os.fsync(f.fileno())
        # 32 records; after record 4 the guest waits 1 s for the shutdown.
        p = subprocess.Popen(_tender(handlers, img, kernel, "32", "1", "4", "1000"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL)
        assert p.stdout is not None and p.stderr is not None
        out = b""
        deadline = time.monotonic() + TIMEOUT
        while b"ack 4\n" not in out and time.monotonic() < deadline:
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
        fd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.ioctl(fd, EXT4_IOC_SHUTDOWN, struct.pack("I", EXT4_GOING_FLAGS_NOLOGFLUSH))
        finally:
            os.close(fd)
        rest, err = p.communicate(timeout=TIMEOUT)
        return subprocess.CompletedProcess(p.args, p.returncode, out + rest, err)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def _inner(scenario: str, handlers: str, kernel: str) -> int:
    with tempfile.TemporaryDirectory(prefix="pytender-faults-") as tmp:
        d = Path(tmp)
        # Private scratch space: nothing of this run touches the host's /tmp
        # beyond an empty directory.
        _mount("-t", "tmpfs", "-o", "size=32m", "pytender-faults", str(d))
        try:
            work = d / "w"
            work.mkdir()
            body = _inner_full if scenario == "full" else _inner_eio
            p = body(handlers, kernel, work)
        finally:
            subprocess.run(["umount", "-l", str(d)], check=False)
    print(json.dumps({"status": p.returncode, "stdout": p.stdout.decode(errors="replace"),
                      "stderr": p.stderr.decode(errors="replace")}))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in SCENARIOS:
        print("usage: python -m tender.stress.faults full|eio native|python KERNEL",
              file=sys.stderr)
        sys.exit(2)
    sys.exit(_inner(*sys.argv[1:]))
