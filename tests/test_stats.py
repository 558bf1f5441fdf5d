"""Tender.stats(): live, frozen snapshots of a running guest (issue 12 part 3),
read from another thread while real guests run on real KVM, in both handler
modes; plus the pure parts (KVM binary stats layout, combining the paths)."""

from __future__ import annotations

import dataclasses
import os
import struct
import threading
import time
from pathlib import Path

import pytest
from conftest import guest

from tender import BlockSpec, HandlerMode, Tender, VmConfig
from tender.errors import Stopped, TenderError
from tender.hypercalls.tally import Field, Tally
from tender.kvm.binstats import StatsFormatError, decode_values, parse_layout
from tender.stats import RunState

MEM = 64 << 20
DISK = 1 << 20


def _start(t: Tender) -> tuple[threading.Thread, dict[str, object]]:
    res: dict[str, object] = {}

    def go() -> None:
        try:
            res["outcome"] = t.run()
        except (TenderError, Stopped) as exc:
            res["outcome"] = exc

    th = threading.Thread(target=go, daemon=True)
    th.start()
    return th, res


def _until(t: Tender, cond: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond(t.stats()):  # type: ignore[operator]
        assert time.monotonic() < deadline, f"never reached: {t.stats()}"
        time.sleep(0.05)


@pytest.mark.usefixtures("kvm")
@pytest.mark.parametrize("mode", [HandlerMode.NATIVE, HandlerMode.PYTHON])
def test_stats_rise_while_a_block_guest_runs(tmp_path: Path, mode: HandlerMode) -> None:
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * DISK)
    out = os.open(tmp_path / "console", os.O_WRONLY | os.O_CREAT, 0o600)
    t = Tender(VmConfig(kernel=guest("blk"), args=(b"write-spin", b"7"), mem=MEM,
                        blocks=(BlockSpec("storage", str(disk)),), handlers=mode),
               console_fd=out)
    before = t.stats()
    assert before.state is RunState.IDLE and before.guest == "blk.hvt"
    th, res = _start(t)
    try:
        # The guest writes the whole disk, then yields (POLL) forever.
        _until(t, lambda s: s.hypercalls.get("poll", 0) >= 2)
        s1 = t.stats()
        _until(t, lambda s: s.hypercalls.get("poll", 0) > s1.hypercalls["poll"])
        s2 = t.stats()
    finally:
        t.stop()
        th.join(60)
        os.close(out)
    assert isinstance(res["outcome"], Stopped)
    for s in (s1, s2):
        assert s.state is RunState.RUNNING
        assert s.mem_size == MEM
        dev = s.devices["storage"]
        assert dev.kind == "block"
        assert (dev.write_bytes, dev.write_ops, dev.write_errors) == (DISK, DISK // 512, 0)
        assert s.hypercalls["block_write"] == DISK // 512
    assert s2.run_time > s1.run_time > 0
    assert s2.exits["io"] > s1.exits["io"] >= DISK // 512
    final = t.stats()
    assert final.state is RunState.EXITED
    assert final.hypercalls["poll"] >= s2.hypercalls["poll"]
    assert t.stats().run_time == final.run_time       # frozen once the run ended
    with pytest.raises(dataclasses.FrozenInstanceError):
        final.state = RunState.IDLE  # type: ignore[misc]
    with pytest.raises(TypeError):
        final.hypercalls["poll"] = 0  # type: ignore[index]


@pytest.mark.usefixtures("kvm")
def test_final_stats_match_the_outcome_and_both_paths_agree(tmp_path: Path) -> None:
    disk = tmp_path / "disk.img"
    seen = []
    for mode in (HandlerMode.NATIVE, HandlerMode.PYTHON):
        disk.write_bytes(b"\0" * DISK)
        t = Tender(VmConfig(kernel=guest("blk"), mem=MEM, handlers=mode,
                            blocks=(BlockSpec("storage", str(disk)),)),
                   console_fd=os.open(os.devnull, os.O_WRONLY))
        outcome = t.run()
        s = t.stats()
        assert outcome.exit_code == 0
        assert dict(s.hypercalls) == dict(outcome.hypercalls)
        dev = s.devices["storage"]
        # The full mode writes and reads every sector and asks for EINVAL on
        # purpose (bad offsets, a bad handle): all of it is counted.
        assert dev.write_bytes >= DISK and dev.read_bytes >= DISK
        assert dev.read_ops + dev.write_ops + dev.read_errors + dev.write_errors \
            + s.bad_handle == s.hypercalls["block_read"] + s.hypercalls["block_write"]
        assert dev.read_errors + dev.write_errors > 0 and s.bad_handle > 0
        assert s.exits["io"] == sum(s.hypercalls.values())
        seen.append((dev, s.bad_handle))
    # The C twins count exactly what the Python reference counts.
    assert seen[0] == seen[1]


@pytest.mark.usefixtures("kvm")
def test_kvm_binary_stats_where_the_host_has_them() -> None:
    t = Tender(VmConfig(kernel=guest("hello"), mem=MEM),
               console_fd=os.open(os.devnull, os.O_WRONLY))
    t.run()
    kvm = t.stats().kvm
    if kvm.unavailable is not None:
        # Detected absence: said so, nothing made up.
        assert kvm.vm == {} and kvm.vcpu == {}
        return
    # KVM counts at least every exit we saw (it also sees exits we do not).
    assert kvm.vcpu["exits"] >= t.stats().exits["io"]
    assert all(isinstance(v, int) for v in kvm.vm.values())


def test_stats_layout_parses_a_crafted_fd() -> None:
    name_size = 16
    header = struct.pack("<6I", 0, name_size, 2, 24, 24, 24 + 2 * (16 + name_size))
    descs = b"".join(
        struct.pack("<IhHII", 0, 0, size, off, 0) + n.ljust(name_size, b"\0")
        for n, size, off in ((b"exits", 1, 0), (b"histogram", 4, 8))
    )
    lay = parse_layout(header, descs)
    assert lay.fields == (("exits", 0),)           # the histogram is left out
    assert lay.data_size == 40
    assert decode_values(lay, (7).to_bytes(8, "little") + bytes(32)) == {"exits": 7}
    with pytest.raises(StatsFormatError):
        decode_values(lay, bytes(8))
    with pytest.raises(StatsFormatError):
        parse_layout(header[:10], descs)
    with pytest.raises(StatsFormatError):
        parse_layout(header, descs[:20])


def test_tally_rows_follow_the_c_field_order() -> None:
    from tender._vcpu import ffi

    names = [f for f, _ in ffi.typeof("struct vl_dev_counters").fields]
    assert names == ["rd_ops", "rd_bytes", "rd_errors", "wr_ops", "wr_bytes", "wr_errors",
                     "drops", "rx_empty"]
    assert [f.name.lower() for f in Field] == names
    t = Tally()
    t.done(3, True, 512)
    t.failed(3, False)
    t.add(3, Field.DROPS)
    assert t.row(3) == (0, 0, 1, 1, 512, 0, 1, 0)
    assert t.row(9) == (0,) * 8


@pytest.mark.usefixtures("kvm")
def test_net_counters_and_drops_agree_on_every_path() -> None:
    """Echo requests into a FramePipe nobody reads: the guest's replies fill
    a small queue and the rest are dropped. The net ring thread, the C
    hypercall twins and the Python handlers must count the same."""
    import socket

    from tender import NetSpec
    from tender.devices import FramePipe, frames

    n, rows = 100, []
    for mode, ring in ((HandlerMode.NATIVE, True), (HandlerMode.NATIVE, False),
                       (HandlerMode.PYTHON, False)):
        pipe = FramePipe(mtu=1500)
        # A small guest-side send queue, so that it fills after a few replies.
        with socket.socket(fileno=os.dup(pipe.guest_fileno())) as g:
            g.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        t = Tender(VmConfig(kernel=guest("net"), args=(b"10.0.0.2", b"limit", b"%d" % n),
                            mem=32 << 20, nets=(NetSpec("service0", pipe=pipe),),
                            handlers=mode, net_ring=ring),
                   console_fd=os.open(os.devnull, os.O_WRONLY))
        th, res = _start(t)
        me = bytes.fromhex("020000000001")
        pipe.send(frames.arp_request(me, "10.0.0.1", "10.0.0.2"))
        reply = pipe.recv(60)
        assert reply is not None, res
        mac = frames.parse(reply).src
        for i in range(n):
            pipe.send(frames.echo_request(me, mac, "10.0.0.1", "10.0.0.2", 1, i, b"x" * 1000))
        th.join(120)
        pipe.close()
        s = t.stats()
        assert getattr(res["outcome"], "exit_code", None) == 0, res
        dev = s.devices["service0"]
        assert dev.kind == "net" and dev.rx_packets == n + 1     # ARP + echoes
        assert dev.drops > 0 and dev.tx_packets + dev.drops == n + 1
        assert dev.read_errors == dev.write_errors == 0
        # Frames the ring moved are not hypercalls.
        assert ("net_write" in s.hypercalls) != ring
        rows.append(dev)
    assert rows[0] == rows[1] == rows[2]
