"""Run a guest with 0, 1, 2, ... fds left under a low RLIMIT_NOFILE, so that
each step of a run in turn is the one that meets EMFILE (many guests in one
process hit the fd limit first). Each attempt must end with the guest's
status or a TenderError (one line), and leave exactly the fds it found.

`python -m tender.stress.fdlimit KERNEL` (the records guest) prints one JSON
object per attempt; it sets the limit on itself, so run it as a separate
process (tests/test_stress.py does)."""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
from pathlib import Path

from tender.config import BlockSpec, HandlerMode, VmConfig
from tender.devices.disk import MemoryDisk
from tender.errors import TenderError
from tender.vm import Tender

LIMIT = 64
SPARE = range(0, 16)


def _open_fds() -> int:
    """Counted without opening anything (listdir would need an fd)."""
    n = 0
    for fd in range(LIMIT):
        try:
            os.fstat(fd)
            n += 1
        except OSError:
            pass
    return n


def _fill(pad: list[int]) -> None:
    try:
        while True:
            pad.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
    except OSError:
        pass


def _attempt(cfg: VmConfig, console: int) -> str:
    try:
        return f"status {Tender(cfg, console_fd=console, diag=lambda _m: None).run().exit_code}"
    except TenderError as exc:
        return f"TenderError: {exc.message}"
    except BaseException as exc:    # what this run looks for
        return f"OTHER {type(exc).__name__}: {exc}"


def main(kernel: str) -> int:
    with tempfile.TemporaryDirectory(prefix="pytender-fdlimit-") as tmp:
        img = Path(tmp) / "disk"
        img.write_bytes(bytes(8 << 10))
        disk = MemoryDisk(8 << 10)
        variants = {
            "image/native": VmConfig(kernel=kernel, args=(b"3",), mem=8 << 20,
                                     blocks=(BlockSpec("storage", str(img)),)),
            "memdisk/python": VmConfig(kernel=kernel, args=(b"3",), mem=8 << 20,
                                       blocks=(BlockSpec("storage", disk=disk),),
                                       handlers=HandlerMode.PYTHON),
        }
        console = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))
        pad: list[int] = []
        for name, cfg in variants.items():
            for spare in SPARE:
                _fill(pad)
                for _ in range(min(spare, len(pad))):
                    os.close(pad.pop())
                before = _open_fds()
                result = _attempt(cfg, console)
                print(json.dumps({"variant": name, "spare": spare, "result": result,
                                  "leaked": _open_fds() - before}), flush=True)
        for fd in pad:
            os.close(fd)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m tender.stress.fdlimit KERNEL", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
