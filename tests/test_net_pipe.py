"""Networking without root or interfaces (issue #8 part 2): the guest's NIC
is a FramePipe attached as --net:NAME=@FD through the real CLI, and the
test is the other end. These are the net tests that need no real tap
behaviour; test_net.py keeps those that do (kernel ping floods, a tap's MTU,
tap attach errors, tap fds from an orchestrator)."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from conftest import ROOT, Run, guest, run_tender, tender_cmd

from tender.devices import FramePipe
from tender.devices import frames as F

pytestmark = pytest.mark.usefixtures("kvm")

HOST_MAC = bytes.fromhex("020000000001")
GUEST0, GUEST1 = "10.0.0.2", "10.1.0.2"
M64 = 64 << 20


def run_piped(*args: str, pipes: int = 1,
              exchange: Callable[[Sequence[FramePipe]], None] | None = None,
              timeout: float = 60) -> Run:
    """Run the CLI with `pipes` FramePipes; `{pipeN}` in args becomes `@FD`.
    `exchange(pipes)` talks to the guest while it runs."""
    ends = [FramePipe() for _ in range(pipes)]
    try:
        fds = [p.guest_fileno() for p in ends]
        names = {f"pipe{i}": f"@{fd}" for i, fd in enumerate(fds)}
        proc = subprocess.Popen(tender_cmd(*(a.format(**names) for a in args)), cwd=ROOT,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, pass_fds=fds)
        try:
            if exchange is not None:
                exchange(ends)
            out, err = proc.communicate(timeout=timeout)
        finally:
            if proc.returncode is None:
                proc.kill()
                proc.communicate()
        return Run(proc.returncode, out, err)
    finally:
        for p in ends:
            p.close()


def host_ip(ip: str) -> str:
    return ip.rsplit(".", 1)[0] + ".1"


def arp(pipe: FramePipe, ip: str) -> F.Frame:
    """The guest's ARP reply for ip."""
    pipe.send(F.arp_request(HOST_MAC, host_ip(ip), ip))
    got = pipe.recv(30)
    assert got is not None, f"no ARP reply for {ip}"
    reply = F.parse(got)
    assert reply.arp_op == 2 and reply.arp_sender_ip == F.ip4(ip), reply
    return reply


def echoes(pipe: FramePipe, ip: str, n: int, payload: bytes = b"pytender") -> None:
    """ARP, then n echo round trips, each reply checked."""
    mac = arp(pipe, ip).src
    for seq in range(n):
        pipe.send(F.echo_request(HOST_MAC, mac, host_ip(ip), ip, 7, seq, payload))
        got = pipe.recv(30)
        assert got is not None, f"no reply to echo {seq}"
        reply = F.parse(got)
        assert (reply.icmp_type, reply.icmp_seq, reply.icmp_payload) == (0, seq, payload)


def ping_payload(pattern: bytes, size: int = 56) -> bytes:
    """What `ping -p HEX` sends: a 16-byte timestamp, then the pattern repeated
    (aligned to the payload start, as the guest checks it)."""
    body = bytes(pattern[i % len(pattern)] for i in range(size))
    return b"\x5a" * 16 + body[16:]


def ring_line(handlers: str) -> str:
    return "NET: ring active" if handlers == "--handlers=native" else "NET: ring inactive"


def test_echo(handlers: str) -> None:
    r = run_piped(handlers, "--net:service0={pipe0}", guest("net"), GUEST0, "limit", "200",
                  exchange=lambda p: echoes(p[0], GUEST0, 200))
    assert r.status == 0, r.output
    assert ring_line(handlers) in r.out
    assert "NET: service0 answered 200 echo requests\nSUCCESS\n" in r.out


def test_ring_can_be_turned_off() -> None:
    r = run_piped("--net-ring=off", "--net={pipe0}", guest("net"), GUEST0, "limit", "100",
                  exchange=lambda p: echoes(p[0], GUEST0, 100))
    assert r.status == 0, r.output
    assert "NET: ring inactive\n" in r.out
    assert "answered 100 echo requests\nSUCCESS\n" in r.out


def test_payload_pattern(handlers: str) -> None:
    payload = ping_payload(bytes.fromhex("deadbeef"))
    r = run_piped(handlers, "--net:service0={pipe0}", guest("net"), GUEST0, "limit", "200",
                  "pattern", "deadbeef", exchange=lambda p: echoes(p[0], GUEST0, 200, payload))
    assert r.status == 0, r.output
    assert ("answered 200 echo requests\nNET: all payloads matched the pattern\nSUCCESS\n"
            in r.out)


def test_payload_mismatch_fails() -> None:
    payload = ping_payload(bytes.fromhex("deadbeef"))
    r = run_piped("--net={pipe0}", guest("net"), GUEST0, "limit", "100", "pattern", "cafebabe",
                  exchange=lambda p: echoes(p[0], GUEST0, 1, payload))
    assert r.status == 1, r.output
    assert "FAILURE: payload byte 16 is 0xde, expected 0xca\n" in r.out
    assert "FAILURE: 1 bad payloads\n" in r.out


def test_two_nics(handlers: str) -> None:
    """Traffic on both NICs at once: POLL's ready set must name each handle."""
    n = 150

    def both(pipes: Sequence[FramePipe]) -> None:
        errors: list[BaseException] = []

        def one(pipe: FramePipe, ip: str) -> None:
            try:
                echoes(pipe, ip, n)
            except BaseException as exc:   # reported in the test thread
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(p, ip))
                   for p, ip in zip(pipes, (GUEST0, GUEST1), strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        if errors:
            raise errors[0]

    r = run_piped(handlers, "--net:service0={pipe0}", "--net:service1={pipe1}",
                  guest("net2"), GUEST0, GUEST1, "limit", str(n), pipes=2, exchange=both)
    assert r.status == 0, r.output
    assert "NET: service0 handle 1 " in r.out and "NET: service1 handle 2 " in r.out
    assert f"service0 answered {n} echo requests\n" in r.out
    assert f"service1 answered {n} echo requests\n" in r.out
    assert r.out.endswith("SUCCESS\n")


def test_jumbo_frames_beyond_the_ring_slots(handlers: str) -> None:
    """8042-byte frames: beyond the ring's 2 KiB slots, so the guest writes
    them with NET_WRITE even in ring mode; the tender does not check the MTU."""
    payload = bytes(range(256)) * 31 + bytes(64)
    r = run_piped(handlers, "--net={pipe0}", guest("net"), GUEST0, "limit", "10",
                  exchange=lambda p: echoes(p[0], GUEST0, 10, payload))
    assert r.status == 0, r.output
    assert "answered 10 echo requests\nSUCCESS\n" in r.out


def test_mac_given(handlers: str) -> None:
    mac = "02:5a:00:12:34:56"
    seen: list[F.Frame] = []

    def talk(pipes: Sequence[FramePipe]) -> None:
        seen.append(arp(pipes[0], GUEST0))
        echoes(pipes[0], GUEST0, 1)

    r = run_piped(handlers, f"--net-mac:service0={mac}", "--net={pipe0}", guest("net"), GUEST0,
                  "limit", "1", exchange=talk)
    assert r.status == 0, r.output
    assert f"NET: service0 handle 1 mac {mac} mtu 1500\n" in r.out
    assert seen[0].src == bytes.fromhex(mac.replace(":", ""))


def test_mac_generated_is_unicast_local() -> None:
    macs = set()
    for _ in range(2):
        r = run_piped("--net={pipe0}", guest("net"), "info")
        assert r.status == 0, r.output
        m = re.search(r"mac ([0-9a-f:]{17}) mtu 1500\n", r.out)
        assert m, r.out
        first = int(m[1][:2], 16)
        assert first & 1 == 0 and first & 2 == 2
        macs.add(m[1])
    assert len(macs) == 2
    # an explicit all-zero MAC also gets a random one
    r = run_piped("--net-mac:service0=00:00:00:00:00:00", "--net={pipe0}", guest("net"), "info")
    assert r.status == 0 and "mac 00:00:00:00:00:00" not in r.out


def test_python_handlers_never_offer_the_ring() -> None:
    r = run_piped("--handlers=python", "--net={pipe0}", guest("net"), "info")
    assert r.status == 0, r.output
    assert "NET: ring inactive\n" in r.out


# --- @FD that is neither a tap nor a frame socket ---------------------------------

def test_fd_not_a_tap() -> None:
    with open("/dev/null", "rb") as f:
        fd = f.fileno()
        p = subprocess.run(tender_cmd(f"--net:service0=@{fd}", guest("net"), "info"), cwd=ROOT,
                           capture_output=True, text=True, pass_fds=(fd,), timeout=60)
    assert p.returncode == 1
    assert p.stderr == (f"pytender: Could not attach interface: @{fd}: "
                        "Inappropriate ioctl for device\n")


def test_fd_not_open() -> None:
    r = run_tender("--net:service0=@987", guest("net"), "info")
    assert r.status == 1
    assert r.err == "pytender: Could not attach interface: @987: Bad file descriptor\n"


@pytest.mark.parametrize("fd", ["999999999999999999", "2147483648", "٣"])
def test_fd_out_of_range(fd: str) -> None:
    r = run_tender("--mem=64", f"--net:service0=@{fd}", guest("net"), GUEST0)
    assert r.status == 1
    assert r.err == f"pytender: Could not attach interface: @{fd}: Bad file descriptor\n"


# --- option errors: found before any interface is opened --------------------------
# "pyt0" never exists here: an error that came from opening it would differ.

def test_unknown_name() -> None:
    r = run_tender("--net:nosuch=pyt0", guest("net"), "info")
    assert r.status == 1
    assert r.err.startswith("pytender: Resource not declared in manifest: 'nosuch'\n"
                            "pytender: Invalid option: `--net:nosuch=pyt0'\nusage: ")


def test_wrong_type_name() -> None:
    r = run_tender("--net-mac:service0=02:00:00:00:00:01", guest("hello"), "x")
    assert r.status == 1
    assert "Resource not declared in manifest: 'service0'" in r.err


def test_unattached() -> None:
    r = run_tender("--net-mac:service0=02:00:00:00:00:01", guest("net"), "info")
    assert r.status == 1
    assert r.err.startswith(
        "pytender: Device 'service0' of type NET_BASIC declared but not attached.\n"
        "pytender: All declared devices must be attached. See --help for syntax.\n")


def test_net_shorthand_needs_exactly_one() -> None:
    r = run_tender("--net=pyt0", guest("hello"), "Hello_Solo5")
    assert r.status == 1
    assert "--net needs exactly one NET_BASIC device in the manifest (it declares: none)" in r.err
    r = run_tender("--net=pyt0", guest("net2"), "info")
    assert r.status == 1
    assert "(it declares: 'service0', 'service1')" in r.err


@pytest.mark.parametrize("mac", ["02:00:00:00:00", "zz:00:00:00:00:00", "02-00-00-00-00-00",
                                 "02:00:00:00:00:00:00"])
def test_bad_mac(mac: str) -> None:
    r = run_tender(f"--net-mac:service0={mac}", "--net=pyt0", guest("net"), "info")
    assert r.status == 1
    assert f"pytender: Invalid option: `--net-mac:service0={mac}'\n" in r.err


def test_iface_too_long_for_option() -> None:
    # 20 characters: beyond the option grammar's 19, so not even a --net option
    r = run_tender("--net:service0=" + "a" * 20, guest("net"), "info")
    assert r.status == 1
    assert "Invalid option: `--net:service0=" in r.err


def test_elf_segment_in_the_ring_area_is_refused(tmp_path: Path) -> None:
    """The loader accepts segments up to the whole allocation (spec 2.2), but
    with a NET device the top 2 MiB are the tender's ring: a hostile image
    that puts a read-only segment there must not crash the tender."""
    from elfcraft import DATA_OFF, PF_R, PT_LOAD, Guest, Phdr, mft_note, mft_payload

    g = Guest(notes=[Guest().notes[0], mft_note(mft_payload([("service0", 2)]))])
    g.loads.append(Phdr(PT_LOAD, PF_R, DATA_OFF, 64 << 20, 0x100, 0x1000))
    path = tmp_path / "ringseg.hvt"
    path.write_bytes(g.build())
    r = run_piped("--mem=64", "--net:service0={pipe0}", str(path))
    assert r.status == 1, r.output
    assert "invalid executable: phdr[4] overlaps the net ring area at 0x4000000" in r.err
    assert "Traceback" not in r.output


# --- ring I/O thread: a hostile guest (HVT_SPEC.md 5.4) -----------------------------
# The net guest's `ring-hostile KIND` posts bad entries straight into the
# shared ring, bypassing the runtime. The ring is only offered with the native
# handlers. Fatal kinds must end the tender from the I/O thread with status 1
# and one line on stderr while the guest still waits (it prints
# `FAILURE: survived` if it is still alive 2 s later).

def _text_segments(path: str) -> list[tuple[int, int]]:
    """[start, end) of the executable PT_LOAD segments of an ELF64 image."""
    import struct

    data = Path(path).read_bytes()
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    out = []
    for i in range(phnum):
        p_type, p_flags, _, _, p_paddr, _, p_memsz, _ = struct.unpack_from(
            "<IIQQQQQQ", data, phoff + i * phentsize)
        if p_type == 1 and p_flags & 1:
            out.append((p_paddr, p_paddr + p_memsz))
    return out


def _ring_hostile(kind: str) -> Run:
    r = run_piped("--handlers=native", "--mem=64", "--net={pipe0}", guest("net"),
                  "ring-hostile", kind)
    assert "NET: ring active\n" in r.out, r.output
    assert f"NET: ring-hostile {kind}\n" in r.out, r.output
    assert "Traceback" not in r.output
    return r


@pytest.mark.parametrize(("kind", "msg"), [
    # NET_WRITE of 16 bytes from the last byte of guest memory
    ("write-oob", f"Invalid guest access: gpa={M64 - 1:#x}, sz=16"),
    # NET_READ beyond M (into the tender's ring area, which the guest does not own)
    ("read-oob", f"Invalid guest access: gpa={M64 + 0x1000:#x}, sz=64"),
    # NET_READ into the tender's page tables: below the write floor
    ("read-lowmem", "Invalid guest access: gpa=0x2000, sz=64"),
    # ent_tail 5000 ahead of ent_head: more than the ring holds
    ("ent-tail-jump", "Invalid guest ring state: ent_head=0 ent_tail=5000"),
])
def test_ring_hostile_fatal(kind: str, msg: str) -> None:
    r = _ring_hostile(kind)
    assert r.status == 1, r.output
    assert r.err == f"pytender: {msg}\n"
    assert "FAILURE" not in r.out


@pytest.mark.parametrize("kind", ["write-oob-halt", "write-oob-kick-halt"])
def test_ring_error_posted_just_before_halt_is_fatal(kind: str) -> None:
    """A bad entry the I/O thread reaches only in its final drain, or while
    the vCPU is already halting, fails the run as solo5-hvt (spec 5.4), even
    though the guest halts with status 0."""
    r = _ring_hostile(kind)
    assert r.status == 1, r.output
    assert r.err == f"pytender: Invalid guest access: gpa={M64 - 1:#x}, sz=16\n"


def test_ring_hostile_read_into_text() -> None:
    """NET_READ into the guest's own .text: the host mapping is read-only, so
    an unchecked read() would fault (EFAULT) or crash the tender; it must be
    refused like any other bad address."""
    r = _ring_hostile("read-text")
    m = re.search(r"^NET: text gpa (0x[0-9a-f]+)\n", r.out, re.M)
    assert m, r.out
    gpa = int(m[1], 16)
    assert any(lo <= gpa < hi for lo, hi in _text_segments(guest("net")))
    assert r.status == 1, r.output
    assert r.err == f"pytender: Invalid guest access: gpa={gpa:#x}, sz=64\n"
    assert "FAILURE" not in r.out


@pytest.mark.parametrize("kind", [
    # NET_WRITE with handles 0 (the reserved entry) and 63 (unused): skipped,
    # no commit; NET_READ with either: a commit {id, EINVAL, len 0}
    "bad-handle",
    # operation 7: consumed (ent_head moves), no commit
    "bad-op",
])
def test_ring_hostile_survivable(kind: str) -> None:
    r = _ring_hostile(kind)
    assert r.status == 0, r.output
    assert r.out.endswith(f"NET: ring-hostile {kind}\nSUCCESS\n"), r.out
    assert r.err == ""
