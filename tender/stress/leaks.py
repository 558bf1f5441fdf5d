"""Many guests in a row in one process: what the process holds (RSS, fds,
threads, mappings) after WARMUP runs and after all of them.

The runs cycle through the paths a long-lived library user takes: a block
guest (image file: open, lock, write, fdatasync, close) in both handler
modes, a run that fails after the VM exists (an unattached device), a run
whose kernel cannot be loaded, and the net guest on a FramePipe with the
ring (its C I/O thread starts and stops). Each must end as expected."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tender.config import BlockSpec, HandlerMode, NetSpec, VmConfig
from tender.devices.pipe import FramePipe
from tender.errors import ElfError, TenderError
from tender.stress.usage import Usage, snapshot
from tender.vm import Tender

WARMUP = 10
MEM = 8 << 20
RECORDS = 4


@dataclass(frozen=True)
class LeakReport:
    runs: int
    at_warmup: Usage
    at_end: Usage
    seconds: float
    failures: tuple[str, ...]

    @property
    def growth(self) -> Usage:
        return self.at_warmup.growth(self.at_end)


def _net(i: int, kernel: str, console: int) -> str | None:
    """The net guest on a FramePipe, native: the ring and its I/O thread."""
    net = str(Path(kernel).with_name("net.hvt"))
    pipe = FramePipe(mtu=1500)
    try:
        cfg = VmConfig(kernel=net, args=(b"10.0.0.2", b"info"), mem=32 << 20,
                       nets=(NetSpec("service0", pipe=pipe),))
        out = Tender(cfg, console_fd=console).run()
    except TenderError as exc:
        return f"run {i}: {exc.message}"
    finally:
        pipe.close()
    return None if out.exit_code == 0 else f"run {i}: net status {out.exit_code}"


def _one(i: int, kernel: str, img: Path, console: int) -> str | None:
    """Run number i; None if it ended as it should."""
    diag: list[str] = []
    kind = i % 5
    if kind == 4:
        return _net(i, kernel, console)
    handlers = HandlerMode.PYTHON if kind == 1 else HandlerMode.NATIVE
    blocks = () if kind == 2 else (BlockSpec("storage", str(img)),)
    path = kernel if kind != 3 else str(img)      # an image is not an ELF file
    cfg = VmConfig(kernel=path, args=(str(RECORDS).encode(),), mem=MEM, blocks=blocks,
                   handlers=handlers)
    try:
        out = Tender(cfg, console_fd=console, diag=diag.append).run()
    except ElfError:
        return None if kind == 3 else f"run {i}: unexpected ElfError"
    except TenderError as exc:
        if kind == 2 and "must be attached" in exc.message:
            return None
        return f"run {i}: {exc.message}"
    if kind >= 2 or out.exit_code != 0:
        return f"run {i}: status {out.exit_code}"
    return None


def run(kernel: str, runs: int) -> LeakReport:
    """`kernel` is the records guest."""
    if runs <= WARMUP:
        raise ValueError(f"runs must be more than {WARMUP}")
    failures: list[str] = []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pytender-leaks-") as tmp:
        img = Path(tmp) / "disk"
        img.write_bytes(bytes(RECORDS * 512))
        console = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        try:
            at_warmup = snapshot()
            for i in range(runs):
                if i == WARMUP:
                    at_warmup = snapshot()
                why = _one(i, kernel, img, console)
                if why:
                    failures.append(why)
            at_end = snapshot()
        finally:
            os.close(console)
    return LeakReport(runs, at_warmup, at_end, time.monotonic() - t0, tuple(failures))
