"""Embedding: orchestration code runs several guests in one process, each in
its own thread with its own console, and stops them on demand."""

from __future__ import annotations

import os
import struct
import threading
import time
from pathlib import Path

import pytest
from conftest import guest

from tender import BlockSpec, HandlerMode, Tender, VmConfig
from tender.errors import Stopped, TenderError

pytestmark = pytest.mark.usefixtures("kvm")
MEM = 64 << 20


class Runner(threading.Thread):
    """One guest in a thread, its console in a file."""

    def __init__(self, config: VmConfig, console: Path) -> None:
        super().__init__(daemon=True)
        self.console = console
        self.fd = os.open(console, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.diag: list[str] = []
        self.tender = Tender(config, console_fd=self.fd, diag=self.diag.append)
        self.result: object = None

    def run(self) -> None:
        try:
            self.result = self.tender.run()
        except TenderError as exc:
            self.result = exc
        finally:
            os.close(self.fd)

    def wait_for(self, text: bytes, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.console.read_bytes():
            assert time.monotonic() < deadline, f"{text!r} never appeared"
            assert self.is_alive(), f"guest ended early: {self.result}"
            time.sleep(0.05)


def test_guests_in_parallel_threads(tmp_path: Path) -> None:
    runners = [
        Runner(VmConfig(kernel=guest("hello"), args=(b"Hello_Solo5",), mem=MEM),
               tmp_path / "hello.out"),
        Runner(VmConfig(kernel=guest("exit"), args=(b"42",), mem=MEM,
                        handlers=HandlerMode.PYTHON), tmp_path / "exit.out"),
        Runner(VmConfig(kernel=guest("abort"), mem=MEM), tmp_path / "abort.out"),
        Runner(VmConfig(kernel=guest("hostile"), args=(b"puts-oob",), mem=MEM),
               tmp_path / "hostile.out"),
    ]
    for r in runners:
        r.start()
    for r in runners:
        r.join(120)
    hello, exit42, abort, hostile = (r.result for r in runners)
    assert getattr(hello, "exit_code", None) == 0
    assert b"Hello, World" in runners[0].console.read_bytes()
    assert getattr(exit42, "exit_code", None) == 42
    assert getattr(abort, "aborted", None) is True
    assert isinstance(hostile, TenderError)
    assert hostile.message == "Invalid guest access: gpa=0x3ffffff, sz=1"
    # Each guest's console went to its own file, nothing crossed over.
    assert b"Hello" not in runners[1].console.read_bytes()


@pytest.mark.parametrize("mode", [HandlerMode.NATIVE, HandlerMode.PYTHON])
def test_stop_a_spinning_guest_keeps_its_writes(tmp_path: Path, mode: HandlerMode) -> None:
    img = tmp_path / "disk.img"
    img.write_bytes(bytes(8 * 512))
    busy = Runner(VmConfig(kernel=guest("blk"), args=(b"write-busy", b"5"), mem=MEM,
                           blocks=(BlockSpec("storage", str(img)),), handlers=mode),
                  tmp_path / "busy.out")
    other = Runner(VmConfig(kernel=guest("time"), mem=MEM), tmp_path / "time.out")
    busy.start()
    other.start()
    busy.wait_for(b"WRITTEN")   # now it spins without a single VM exit
    busy.tender.stop()
    busy.join(30)
    assert not busy.is_alive()
    assert isinstance(busy.result, Stopped)
    data = img.read_bytes()
    for s in range(8):
        assert struct.unpack_from("<QQ", data, s * 512) == (s, 5)
    # Stopping one guest left the other alone.
    other.join(120)
    assert getattr(other.result, "exit_code", None) == 0
    assert b"SUCCESS" in other.console.read_bytes()


def test_stop_a_guest_waiting_in_poll(tmp_path: Path) -> None:
    r = Runner(VmConfig(kernel=guest("time"), mem=MEM), tmp_path / "time.out")
    r.start()
    r.wait_for(b"yield 0")
    r.tender.stop()
    r.join(30)
    assert isinstance(r.result, Stopped)
    assert b"SUCCESS" not in r.console.read_bytes()


def test_stop_before_run(tmp_path: Path) -> None:
    t = Tender(VmConfig(kernel=guest("hello"), args=(b"Hello_Solo5",), mem=MEM))
    t.stop()
    with pytest.raises(Stopped):
        t.run()


def test_library_config_is_validated(tmp_path: Path) -> None:
    img = tmp_path / "disk.img"
    img.write_bytes(bytes(4096))
    for bs in (0, 1000, 1 << 20):
        t = Tender(VmConfig(kernel=guest("blk"), mem=MEM,
                            blocks=(BlockSpec("storage", str(img), block_size=bs),)))
        with pytest.raises(TenderError, match="Block size must be a multiple of 2"):
            t.run()
