"""Short CI versions of the reliability runs (README "Reliability" has the
long commands and their figures): many guests at once, many in a row, SIGKILL
while writing, a full and a failing disk. Real guests on real KVM."""

from __future__ import annotations

import os

import pytest
from conftest import guest

from tender.config import HandlerMode
from tender.devices.disk import MemoryDisk
from tender.stress import crash, faults, leaks, load, netload
from tender.stress.__main__ import main as stress_main
from tender.stress.usage import snapshot

pytestmark = pytest.mark.usefixtures("kvm")
MODES = list(HandlerMode)


@pytest.mark.parametrize("handlers", MODES, ids=lambda m: m.value)
def test_ten_library_guests_at_once_each_get_their_own_result(handlers: HandlerMode) -> None:
    before = snapshot()
    r = load.run_threads(guest("hold"), 10, handlers)
    assert r.failures == ()
    assert r.guests == 10 and r.stopped == 2
    after = snapshot()
    assert after.fds == before.fds      # consoles, disks, kernels, VM fds: all closed


@pytest.mark.parametrize(("handlers", "n"), [(HandlerMode.NATIVE, 10), (HandlerMode.PYTHON, 5)],
                         ids=["native", "python"])
def test_tender_processes_at_once_each_get_their_own_result(handlers: HandlerMode,
                                                            n: int) -> None:
    r = load.run_processes(guest("hold"), n, handlers)
    assert r.failures == ()
    assert r.guests == n and r.stopped == n // 5


def test_stop_racing_the_end_of_runs_never_crashes_or_misreports() -> None:
    done, stopped, failures = load.stop_race(guest("exit"), 60, seed=5)
    assert failures == ()
    assert done + stopped == 60 and done > 0 and stopped > 0


@pytest.mark.parametrize("handlers", MODES, ids=lambda m: m.value)
def test_ten_net_guests_at_once_each_answer_for_themselves(handlers: HandlerMode) -> None:
    before = snapshot()
    r = netload.run_threads(guest("net"), 10, handlers)
    assert r.failures == ()
    assert snapshot().fds == before.fds


def test_load_judge_sees_someone_elses_output() -> None:
    own = load.status_of(3)
    assert load.judge_output(3, b"hold: start 99\nhold: end 99\n", True) is not None
    assert load.judge_output(3, b"hold: start %d\nhold: end 99\n" % own, True) is not None
    assert load.judge_output(3, b"hold: start %d\nhold: end %d\n" % (own, own), False)
    assert load.judge_output(3, b"hold: start %d\n" % own, True) is not None
    assert load.judge_output(3, b"GUEST: x\nhold: start %d\nhold: end %d\n" % (own, own),
                             True) is None
    assert load.judge_output(3, b"hold: start %d\n" % own, False) is None


def test_kept_errors_do_not_keep_the_kernel_open() -> None:
    """A kept Stopped or TenderError (its traceback) once held the kernel
    fd until the exception was collected: 50 stopped guests, 50 fds."""
    import threading
    import time

    from tender import Tender, VmConfig
    from tender.config import BlockSpec
    from tender.errors import Stopped, TenderError

    kept: list[BaseException] = []
    before = snapshot().fds
    for _ in range(3):
        disk = MemoryDisk(512)
        console = os.memfd_create("console")
        t = Tender(VmConfig(kernel=guest("hold"), mem=8 << 20, args=(b"7",),
                            blocks=(BlockSpec("storage", disk=disk),)), console_fd=console)

        def body(t: Tender = t) -> None:
            try:
                t.run()
            except Stopped as exc:
                kept.append(exc)

        th = threading.Thread(target=body)
        th.start()
        deadline = time.monotonic() + 60
        while b"hold: start" not in os.pread(console, 4096, 0):
            assert time.monotonic() < deadline and th.is_alive()
            time.sleep(0.01)
        t.stop()
        th.join()
        os.close(console)
        disk.close()
    for _ in range(3):
        try:      # fails after the VM exists: the device is not attached
            Tender(VmConfig(kernel=guest("hold"), mem=8 << 20), diag=lambda _m: None).run()
        except TenderError as exc:
            kept.append(exc)
    assert len(kept) == 6
    assert snapshot().fds == before


def test_hundred_runs_in_a_row_leak_no_fd_or_thread() -> None:
    r = leaks.run(guest("records"), 100)
    assert r.failures == ()
    g = r.growth
    assert g.fds == 0 and g.threads == 0 and g.maps <= 2
    # 90 runs: measured +0..+200 KiB here; 2 MiB would be 23 KiB per run.
    assert g.rss_kib < 2048, r


def test_crash_image_check_sees_a_lost_or_torn_record() -> None:
    data = bytearray(crash.record(0) + crash.record(1) + bytes(512))
    assert crash.check_image(bytes(data), {0, 1}, 3) == crash.ImageCheck((), (), 2)
    assert crash.check_image(bytes(data), {0, 1, 2}, 3).lost == (2,)
    data[600] ^= 1
    chk = crash.check_image(bytes(data), {0}, 3)
    assert chk.lost == () and chk.torn == (1,)
    assert crash.record(1)[:16] == b"PTREC001" + (1).to_bytes(8, "little")


@pytest.mark.parametrize("handlers", MODES, ids=lambda m: m.value)
def test_sigkill_never_loses_an_acknowledged_record(handlers: HandlerMode) -> None:
    r = crash.run(guest("records"), 5, 13, handlers, count=100)
    assert r.failures == []
    assert r.acked > 0 and r.phases["while writing"] > 0


def _need_faults(scenario: str) -> None:
    missing = faults.missing_tools(scenario)
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")


@pytest.mark.parametrize("handlers", MODES, ids=lambda m: m.value)
def test_disk_full_gives_the_guest_eunspec_and_the_tender_runs_on(
        handlers: HandlerMode) -> None:
    _need_faults("full")
    r = faults.run("full", handlers, guest("records"))
    assert r.failures == ()
    assert r.status == 2 and r.acked == 16 and r.failed == 48 and r.stderr == ""


@pytest.mark.parametrize("handlers", MODES, ids=lambda m: m.value)
def test_io_error_gives_the_guest_eunspec_and_one_line(handlers: HandlerMode) -> None:
    _need_faults("eio")
    r = faults.run("eio", handlers, guest("records"))
    assert r.failures == ()
    assert r.status == 1 and r.acked == 5 and r.failed == 27
    assert r.stderr.startswith("pytender: storage: fdatasync of ")


def test_fault_judge_rejects_a_fatal_tender() -> None:
    """What the old tender did on ENOSPC: exit 1 with a fatal line."""
    out = b"ack 0\nack 1\n"
    err = b"pytender: Fatal error when writing: No space left on device\n"
    assert faults.judge("full", "native", 1, out, err).failures
    good = b"ack 0\nfail 1 ret=3\nrecords: acked 1 failed 1\n"
    assert faults.judge("full", "native", 2, good, b"").failures == ()
    assert faults.judge("full", "native", 2, good.replace(b"ret=3", b"ret=2"), b"").failures


def test_stress_command_prints_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert stress_main(["--guests", os.path.dirname(guest("hold")), "load", "--threads", "3",
                        "--processes", "0", "--net", "0", "--stop-race", "0",
                        "--handlers", "native"]) == 0
    out = capsys.readouterr().out
    assert "threads/native: 3 guests at once (0 stopped)" in out and "0 failures" in out


def test_out_of_fds_every_step_fails_with_one_line_and_leaks_nothing() -> None:
    """Found by the load run: under EMFILE, lazy imports, the epoll set and
    a MemoryDisk's dup raised bare OSError/ImportError, and the ELF reader
    called a good kernel invalid."""
    import json
    import subprocess
    import sys

    from conftest import ROOT

    p = subprocess.run([sys.executable, "-m", "tender.stress.fdlimit", guest("records")],
                       capture_output=True, cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr[-500:]
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(rows) == 32
    for row in rows:
        assert row["leaked"] == 0, row
        res = row["result"]
        assert res == "status 0" or (res.startswith("TenderError: ")
                                     and "Too many open files" in res), row
        assert "invalid" not in res, row
    assert sum(r["result"] == "status 0" for r in rows) >= 10     # enough fds: it runs
    assert sum(r["result"] != "status 0" for r in rows) >= 10     # and each step failed once


class _FillingDisk:
    """A BlockDisk object (Python handlers) that runs out of space after
    `room` writes."""

    capacity = 64 * 512
    block_size = 512

    def __init__(self, room: int) -> None:
        self.data = bytearray(self.capacity)
        self.room = room

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self.data[offset:offset + length])

    def write(self, offset: int, data: bytes) -> None:
        if self.room == 0:
            raise OSError(28, "No space left on device")
        self.room -= 1
        self.data[offset:offset + len(data)] = data

    def sync(self) -> None:
        pass


def test_a_blockdisk_object_that_fails_gives_the_guest_eunspec() -> None:
    from tender import Tender, VmConfig
    from tender.config import BlockSpec

    disk = _FillingDisk(room=3)
    console = os.memfd_create("console")
    out = Tender(VmConfig(kernel=guest("records"), args=(b"6",), mem=8 << 20,
                          blocks=(BlockSpec("storage", disk=disk),)), console_fd=console).run()
    text = os.pread(console, 1 << 16, 0).decode()
    os.close(console)
    assert out.exit_code == 2
    assert "ack 2\nfail 3 ret=3\n" in text and "records: acked 3 failed 3" in text
    assert "mismatch" not in text and "badread" not in text
    assert bytes(disk.data[:512]) == crash.record(0)
