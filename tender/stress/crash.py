"""SIGKILL the tender at seeded random points while the `records` guest
writes numbered records, then check the image: every record the guest
acknowledged (it prints `ack i` only after BLOCK_WRITE returned OK) is on
it, and every other sector holds zeros or its own whole record.

A pwrite that returned is in the page cache, which outlives the process,
so a tender that acknowledges only after pwrite loses nothing to SIGKILL;
this checks that the tender does exactly that in both handler modes."""

from __future__ import annotations

import os
import random
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tender.config import HandlerMode

SECTOR = 512
MEM_MIB = 8
_ACK = re.compile(rb"^ack (\d+)$", re.M)
_GOLDEN = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1


def record(i: int, size: int = SECTOR) -> bytes:
    """Record i as guests/records/main.c writes it."""
    words = [(((i + 1) * _GOLDEN) & _MASK) ^ k for k in range(size // 8)]
    words[1] = i
    return b"PTREC001" + struct.pack(f"<{len(words) - 1}Q", *words[1:])


@dataclass(frozen=True)
class ImageCheck:
    lost: tuple[int, ...]       # acknowledged but not on the image
    torn: tuple[int, ...]       # sectors that are neither zero nor their own record
    present: int                # sectors holding their record


def check_image(data: bytes, acked: set[int], count: int) -> ImageCheck:
    lost, torn, present = [], [], 0
    zero = bytes(SECTOR)
    for i in range(count):
        got = data[i * SECTOR : (i + 1) * SECTOR]
        if got == record(i):
            present += 1
        else:
            if i in acked:
                lost.append(i)
            if got != zero:
                torn.append(i)
    return ImageCheck(tuple(lost), tuple(torn), present)


@dataclass
class CrashReport:
    mode: str
    kills: int
    seed: int
    acked: int = 0                      # acknowledgements seen, all runs
    phases: Counter[str] = field(default_factory=Counter)   # where the kills landed
    failures: list[str] = field(default_factory=list)


def _command(img: Path, kernel: str, count: int, handlers: HandlerMode) -> list[str]:
    return [sys.executable, "-m", "tender.cli", "run", f"--mem={MEM_MIB}",
            f"--handlers={handlers.value}", f"--block:storage={img}", kernel, str(count)]


def full_run_seconds(kernel: str, count: int, handlers: HandlerMode) -> float:
    """How long one uninterrupted run takes here (the kill window)."""
    with tempfile.TemporaryDirectory(prefix="pytender-crash-") as tmp:
        img = Path(tmp) / "disk"
        img.write_bytes(bytes(count * SECTOR))
        t0 = time.monotonic()
        p = subprocess.run(_command(img, kernel, count, handlers), capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=300)
        took = time.monotonic() - t0
        if p.returncode != 0:
            raise RuntimeError(f"records run failed: {p.returncode} {p.stderr[-200:]!r}")
    return took


def _kill_when(p: subprocess.Popen[bytes], after_ack: int | None, delay: float) -> bytes:
    """SIGKILL p `delay` s after it acknowledged record `after_ack` (None:
    after start); return all it printed."""
    assert p.stdout is not None
    out = b""
    if after_ack is not None:
        want = b"ack %d\n" % after_ack
        while want not in out:
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    return out + p.stdout.read()


def run(kernel: str, kills: int, seed: int, handlers: HandlerMode = HandlerMode.NATIVE,
        count: int = 200) -> CrashReport:
    """Kill `kills` runs: one in five at a random time of a whole run
    (start-up included), the others a random 0-5 ms after a random ack."""
    window = full_run_seconds(kernel, count, handlers)
    rng = random.Random(seed)
    report = CrashReport(f"crash/{handlers.value}", kills, seed)
    with tempfile.TemporaryDirectory(prefix="pytender-crash-") as tmp:
        for k in range(kills):
            img = Path(tmp) / f"disk{k}"
            img.write_bytes(bytes(count * SECTOR))
            if rng.random() < 0.2:
                after_ack, delay = None, rng.uniform(0.0, window)
            else:
                after_ack, delay = rng.randrange(count), rng.uniform(0.0, 0.005)
            p = subprocess.Popen(_command(img, kernel, count, handlers),
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 stdin=subprocess.DEVNULL)
            with p:
                out = _kill_when(p, after_ack, delay)
            acked = {int(m.group(1)) for m in _ACK.finditer(out)}
            report.acked += len(acked)
            if p.returncode != -signal.SIGKILL:
                report.phases["finished before the kill"] += 1
            elif not acked:
                report.phases["before the first ack"] += 1
            else:
                report.phases["while writing"] += 1
            chk = check_image(img.read_bytes(), acked, count)
            if chk.lost or chk.torn:
                report.failures.append(
                    f"kill {k} (seed {seed}, ack {after_ack} + {delay:.3f} s): {len(acked)} "
                    f"acked, lost {list(chk.lost)[:10]}, torn {list(chk.torn)[:10]}")
            img.unlink()
    return report
