"""Python-backed devices (issue #8, part 1): MemoryDisk, any BlockDisk and
FramePipe, served by real guests on real KVM in every handler mode, no root."""

from __future__ import annotations

import os
import struct
import threading
from pathlib import Path

import pytest
from conftest import guest, require_kvm

from tender import BlockSpec, HandlerMode, NetSpec, Tender, TenderError, VmConfig
from tender.devices import FramePipe, MemoryDisk
from tender.devices import frames as F
from tender.errors import UsageError

MEM = 32 << 20
HOST_MAC = b"\x02\x00\x00\x00\x00\x01"


class DictDisk:
    """A BlockDisk with no fd: the Python block handlers serve it."""

    capacity = 64 * 512
    block_size = 512

    def __init__(self) -> None:
        self.data = bytearray(self.capacity)

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self.data[offset : offset + length])

    def write(self, offset: int, data: bytes) -> None:
        self.data[offset : offset + len(data)] = data

    def sync(self) -> None:
        pass


@pytest.mark.parametrize("mode", list(HandlerMode))
@pytest.mark.parametrize("kind", ["memory", "object"])
def test_python_disks_serve_the_blk_guest(tmp_path: Path, mode: HandlerMode, kind: str) -> None:
    require_kvm()
    disk = MemoryDisk(64 * 512) if kind == "memory" else DictDisk()
    out_path = tmp_path / "console"
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT)
    try:
        out = Tender(VmConfig(kernel=guest("blk"), mem=MEM, handlers=mode,
                              blocks=(BlockSpec("storage", disk=disk),)), console_fd=fd).run()
    finally:
        os.close(fd)
    assert out.exit_code == 0 and out_path.read_bytes().endswith(b"SUCCESS\n")
    for s in range(64):   # the guest's per-sector pattern is in the disk
        assert struct.unpack_from("<Q", disk.data, s * 512)[0] == s


def test_spec_needs_exactly_one_backing() -> None:
    with pytest.raises(UsageError, match="not both"):
        BlockSpec("storage", "/img", disk=MemoryDisk(4096))
    with pytest.raises(UsageError, match="not neither"):
        NetSpec("service0")


def test_pipe_on_a_block_name() -> None:
    require_kvm()
    t = Tender(VmConfig(kernel=guest("blk"), mem=MEM,
                        nets=(NetSpec("storage", pipe=FramePipe()),)))
    with pytest.raises(TenderError, match="'storage' is a BLOCK_BASIC device"):
        t.run()


def _ping_through(pipe: FramePipe, n: int) -> None:
    pipe.send(F.arp_request(HOST_MAC, "10.0.0.1", "10.0.0.2"))
    got = pipe.recv(60)
    assert got is not None
    reply = F.parse(got)
    assert reply.arp_op == 2 and reply.arp_sender_ip == F.ip4("10.0.0.2")
    for i in range(n):
        pipe.send(F.echo_request(HOST_MAC, reply.src, "10.0.0.1", "10.0.0.2", 7, i))
        got = pipe.recv(60)
        assert got is not None
        echo = F.parse(got)
        assert (echo.icmp_type, echo.icmp_seq, echo.icmp_payload) == (0, i, b"pytender")


@pytest.mark.parametrize("mode,ring", [(HandlerMode.NATIVE, True), (HandlerMode.NATIVE, False),
                                       (HandlerMode.PYTHON, False)])
def test_frame_pipe_ping(tmp_path: Path, mode: HandlerMode, ring: bool) -> None:
    require_kvm()
    pipe = FramePipe(mtu=4000)
    out_path = tmp_path / "console"
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT)
    t = Tender(VmConfig(kernel=guest("net"), args=(b"10.0.0.2", b"limit", b"20"), mem=MEM,
                        handlers=mode, net_ring=ring, nets=(NetSpec("service0", pipe=pipe),)),
               console_fd=fd)
    result: list[object] = []
    th = threading.Thread(target=lambda: result.append(t.run()))
    th.start()
    try:
        _ping_through(pipe, 20)
    finally:
        th.join(60)
        os.close(fd)
    out = out_path.read_text()
    assert "MTU is 4000\n" in out
    assert ("NET: ring active" in out) == ring
    assert out.endswith("answered 20 echo requests\nSUCCESS\n")
    assert getattr(result[0], "exit_code", None) == 0


def test_frame_socket_as_at_fd() -> None:
    """--net:NAME=@FD with a SOCK_SEQPACKET socket, through the real CLI."""
    require_kvm()
    import subprocess

    from conftest import ROOT, tender_cmd

    pipe = FramePipe()
    gfd = pipe.guest_fileno()
    proc = subprocess.Popen(tender_cmd(f"--net:service0=@{gfd}", guest("net"), "10.0.0.2",
                                       "limit", "3"),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, pass_fds=(gfd,))
    try:
        _ping_through(pipe, 3)
    finally:
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.endswith(b"answered 3 echo requests\nSUCCESS\n")
