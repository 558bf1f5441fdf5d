"""Issue 2 (block): --block / --disk, sector sizes, bad images, locking,
durability on every exit path, 63 devices; both handler modes."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, guest, run_tender, tender_cmd

pytestmark = pytest.mark.usefixtures("kvm")

MEM = "--mem=64"


def image(path: Path, size: int) -> str:
    with open(path, "wb") as f:
        f.truncate(size)
    return str(path)


def sectors_hold_pattern(path: str, block_size: int, seed: int) -> None:
    """The blk guest writes (sector index, seed, ...) at the start of each sector."""
    data = Path(path).read_bytes()
    assert len(data) % block_size == 0
    for s in range(len(data) // block_size):
        got = struct.unpack_from("<QQ", data, s * block_size)
        assert got == (s, seed), f"sector {s} holds {got}"


@pytest.mark.parametrize("bs", [512, 4096])
def test_blk_full(tmp_path: Path, handlers: str, bs: int) -> None:
    img = image(tmp_path / "disk.img", 32 * bs)
    r = run_tender(MEM, handlers, f"--block:storage={img}",
                   f"--block-sector-size:storage={bs}", guest("blk"), "full", "0", "multi")
    assert r.status == 0, r.output
    assert "SUCCESS" in r.out
    assert "blk: verified 32 sectors" in r.out
    assert "multi-sector: OK" in r.out
    assert "misaligned raw read (offset 1): EINVAL" in r.out
    sectors_hold_pattern(img, bs, 0)


def test_sector_size_option_may_come_first(tmp_path: Path) -> None:
    img = image(tmp_path / "disk.img", 8 * 4096)
    r = run_tender(MEM, "--block-sector-size:storage=4096", f"--block:storage={img}",
                   guest("blk"), "full", "3")
    assert r.status == 0, r.output
    sectors_hold_pattern(img, 4096, 3)


def test_disk_shorthand(tmp_path: Path) -> None:
    img = image(tmp_path / "disk.img", 16 * 512)
    r = run_tender(MEM, f"--disk={img}", guest("blk"), "write", "9")
    assert r.status == 0, r.output
    sectors_hold_pattern(img, 512, 9)
    r = run_tender(MEM, f"--disk={img}", guest("blk"), "verify", "9")
    assert r.status == 0 and "blk: verified 16 sectors (seed 9)" in r.out


def test_disk_shorthand_needs_exactly_one_device(tmp_path: Path) -> None:
    img = image(tmp_path / "disk.img", 4096)
    r = run_tender(MEM, f"--disk={img}", guest("blk2"))
    assert r.status == 1
    assert "'disk0', 'disk1'" in r.err and "Traceback" not in r.err
    r = run_tender(MEM, f"--disk={img}", guest("hello"))
    assert r.status == 1
    assert "needs exactly one BLOCK_BASIC device" in r.err and "none" in r.err


def test_two_devices(tmp_path: Path, handlers: str) -> None:
    a = image(tmp_path / "a.img", 16 * 512)
    b = image(tmp_path / "b.img", 8 * 4096)
    r = run_tender(MEM, handlers, f"--block:disk0={a}", f"--block:disk1={b}",
                   "--block-sector-size:disk1=4096", guest("blk2"))
    assert r.status == 0 and "SUCCESS" in r.out, r.output
    assert Path(a).read_bytes() != Path(b).read_bytes()[: 16 * 512]


@pytest.mark.parametrize(
    ("size", "bs", "message"),
    [
        (6 * 1024, 4096, "storage: Backing storage size must be block aligned (4096 bytes)"),
        (0, 512, "storage: Backing storage must be at least 1 block (512 bytes) in size"),
        (1563, 521, "Block size must be a multiple of 2 greater than or equal 512"),
        (256, 256, "Block size must be a multiple of 2 greater than or equal 512"),
        (4096, 70000, "Block size must be a multiple of 2 greater than or equal 512"),
    ],
)
def test_bad_images(tmp_path: Path, size: int, bs: int, message: str) -> None:
    img = image(tmp_path / "disk.img", size)
    r = run_tender(MEM, f"--block:storage={img}", f"--block-sector-size:storage={bs}",
                   guest("blk"))
    assert r.status == 1
    assert f"pytender: {message}" in r.err
    assert r.out == "" and "Traceback" not in r.err


def test_missing_and_unopenable_images(tmp_path: Path) -> None:
    r = run_tender(MEM, f"--block:storage={tmp_path}/nope.img", guest("blk"))
    assert r.status == 1
    assert (f"pytender: Could not open block device: {tmp_path}/nope.img: "
            "No such file or directory") in r.err
    r = run_tender(MEM, f"--block:storage={tmp_path}", guest("blk"))
    assert r.status == 1
    assert "Could not open block device" in r.err and "Is a directory" in r.err


def test_unknown_block_name(tmp_path: Path) -> None:
    img = image(tmp_path / "disk.img", 4096)
    r = run_tender(MEM, f"--block:other={img}", guest("blk"))
    assert r.status == 1
    assert "Resource not declared in manifest: 'other'" in r.err


def test_image_lock(tmp_path: Path) -> None:
    img = image(tmp_path / "disk.img", 8 * 512)
    first = subprocess.Popen(tender_cmd(MEM, f"--block:storage={img}", guest("blk"),
                                        "write-spin", "1"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        assert first.stdout is not None
        for line in first.stdout:
            if b"WRITTEN" in line:
                break
        r = run_tender(MEM, f"--block:storage={img}", guest("blk"), "verify", "1")
        assert r.status == 1
        assert (f"pytender: Could not attach block device 'storage': {img} is in use by "
                f"another tender (pid {first.pid})") in r.err
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
    assert first.returncode == 1


@pytest.mark.parametrize("how", ["exit", "abort", "fault", "SIGTERM", "SIGINT", "busy-SIGTERM"])
def test_writes_survive_every_exit_path(tmp_path: Path, handlers: str, how: str) -> None:
    img = image(tmp_path / "disk.img", 16 * 512)
    seed = 41
    if how.endswith(("SIGTERM", "SIGINT")):
        # write-busy spins with no VM exit: the signal must still stop KVM_RUN.
        mode = "write-busy" if how.startswith("busy") else "write-spin"
        sig = getattr(signal, how.split("-")[-1])
        proc = subprocess.Popen(
            tender_cmd(MEM, handlers, f"--block:storage={img}", guest("blk"),
                       mode, str(seed)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        assert proc.stdout is not None
        for line in proc.stdout:
            if b"WRITTEN" in line:
                break
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 1
        assert f"Exiting on signal {int(sig)}".encode() in err
    else:
        mode = {"exit": "write", "abort": "write-abort", "fault": "write-fault"}[how]
        r = run_tender(MEM, handlers, f"--block:storage={img}", guest("blk"), mode, str(seed))
        assert r.status == {"exit": 0, "abort": 255, "fault": 1}[how], r.output
    sectors_hold_pattern(img, 512, seed)
    r = run_tender(MEM, f"--block:storage={img}", guest("blk"), "verify", str(seed))
    assert r.status == 0 and "SUCCESS" in r.out, r.output


def test_63_devices(tmp_path: Path) -> None:
    args = [f"--block:storage{i}={image(tmp_path / f'{i}.img', 4096)}" for i in range(63)]
    r = run_tender(MEM, *args, guest("mft63"))
    assert r.status == 0 and "SUCCESS" in r.out, r.output


def test_hostile_block_requests(tmp_path: Path, handlers: str) -> None:
    img = image(tmp_path / "disk.img", 8 * 512)
    for mode in ("block-nodev", "block-hugehandle"):
        r = run_tender(MEM, handlers, f"--block:storage={img}", guest("hostileblk"), mode)
        assert r.status == 0 and "SUCCESS" in r.out, r.output
    assert os.path.getsize(img) == 8 * 512


def test_device_errors_come_before_later_option_errors(tmp_path: Path) -> None:
    """solo5-hvt opens a device as it parses its option (spec 1, step 4)."""
    r = run_tender(MEM, f"--block:storage={tmp_path}/nope.img", "--bogus", guest("blk"))
    assert r.status == 1
    assert "Could not open block device" in r.err and "Invalid option" not in r.err
    img = image(tmp_path / "disk.img", 4096)
    r = run_tender(MEM, f"--block:storage={img}", "--bogus", guest("blk"))
    assert r.status == 1
    assert "pytender: Invalid option: `--bogus'" in r.err
