"""--gdb: real gdb (batch mode) against real guests on real KVM, plus raw
remote-protocol abuse. Every tender is started on --gdb-port=0 (the stub
prints the port it got), and killed if a test leaves it behind."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, guest, run_tender, tender_cmd

pytestmark = [
    pytest.mark.usefixtures("kvm"),
    pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb not installed"),
]

PORT_LINE = re.compile(r"gdb: waiting for a connection on 127\.0\.0\.1:(\d+)")
CAPS_LINE = re.compile(r"gdb: KVM guest debug: (.*)")


@dataclass
class Tender:
    proc: subprocess.Popen[bytes]
    port: int
    caps: str
    head: str

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out.decode(), self.head + err.decode()


Start = Callable[..., Tender]


@pytest.fixture
def start() -> Iterator[Start]:
    procs: list[subprocess.Popen[bytes]] = []

    def _start(name: str, *args: str) -> Tender:
        proc = subprocess.Popen(tender_cmd("--gdb", "--gdb-port=0", guest(name), *args),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, cwd=ROOT)
        procs.append(proc)
        head = ""
        assert proc.stderr is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stderr.readline().decode()
            if not line:
                break
            head += line
            m = PORT_LINE.search(line)
            if m:
                caps = CAPS_LINE.search(head)
                return Tender(proc, int(m[1]), caps[1] if caps else "", head)
        proc.kill()
        pytest.fail(f"tender did not listen: {head}")

    yield _start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def gdb_cmd(t: Tender, name: str, *commands: str) -> list[str]:
    cmd = ["gdb", "-batch", "-nx", "-ex", "set confirm off",
           "-ex", f"target remote 127.0.0.1:{t.port}"]
    for c in commands:
        cmd += ["-ex", c]
    return [*cmd, guest(name)]


def gdb(t: Tender, name: str, *commands: str) -> str:
    r = subprocess.run(gdb_cmd(t, name, *commands), capture_output=True, text=True,
                       timeout=120)
    return r.stdout + r.stderr


def test_break_step_print_finish(start: Start) -> None:
    t = start("gdbtarget")
    out = gdb(t, "gdbtarget", "info registers rip", "break add_step", "continue", "bt",
              "print x", "print y", "next", "step", "print r", "finish",
              "delete", "continue")
    assert re.search(r"^rip\s+0x100000\s+0x100000 <_start>", out, re.M), out
    assert "Breakpoint 1, add_step (x=x@entry=0, y=y@entry=7) at gdbtarget/main.c:13" in out
    assert re.search(r"#1 .* in app_main .* at gdbtarget/main.c:28", out), out
    assert "$1 = 0\n$2 = 7\n" in out
    assert "\n14\t    gdb_counter += r;\n15\t    return r;\n$3 = 7\n" in out, out
    assert "Value returned is $4 = 7" in out
    assert "[Inferior 1 (Remote target) exited normally]" in out
    status, stdout, err = t.finish()
    assert status == 0, err
    assert "gdbtarget: total=65 counter=65" in stdout
    assert "gdb: connection from 127.0.0.1:" in err


def test_registers_incl_r12_r15_and_memory_writes(start: Start) -> None:
    t = start("gdbtarget")
    out = gdb(t, "gdbtarget", "break add_step", "continue",
              "set $o12 = $r12", "set $o13 = $r13", "set $o14 = $r14", "set $o15 = $r15",
              # before the stepi: add_step's first instruction loads the counter
              "set var gdb_counter = 1000", "print gdb_counter",
              "set $r12 = 0x1122334455667788", "set $r13 = 13", "set $r14 = 14",
              "set $r15 = 0xf00d", "stepi",   # the values make a round trip through KVM
              "printf \"R %lx %ld %ld %lx\\n\", $r12, $r13, $r14, $r15",
              "info registers eflags cs ss fs_base",
              "print $xmm0.uint128", "print $st0",
              # app_main may keep its loop state in callee-saved r12-r15
              "set $r12 = $o12", "set $r13 = $o13", "set $r14 = $o14", "set $r15 = $o15",
              "delete", "continue")
    assert "R 1122334455667788 13 14 f00d" in out, out
    assert re.search(r"^cs\s+0x8\s+8$", out, re.M), out
    assert re.search(r"^fs_base\s+0x[0-9a-f]+", out, re.M), out
    assert re.search(r"^\$\d+ = 1000$", out, re.M), out
    status, stdout, err = t.finish()
    assert status == 0, err
    assert "gdbtarget: total=65 counter=1065" in stdout


def test_r12_to_r15_are_real(start: Start) -> None:
    t = start("gdbtarget")
    out = gdb(t, "gdbtarget", "set $r12 = 0x1122334455667788", "set $r15 = 0xf00d",
              "stepi", "print/x $r12", "print/x $r15", "kill")
    assert "$1 = 0x1122334455667788" in out and "$2 = 0xf00d" in out, out
    status, _, err = t.finish()
    assert status == 1 and err.rstrip().endswith("gdb: guest killed by the debugger")


def test_watchpoint(start: Start) -> None:
    t = start("gdbtarget")
    out = gdb(t, "gdbtarget", "break add_step", "continue", "delete",
              "watch gdb_counter", "continue", "continue", "delete", "continue")
    # kvm_pvm never fires data breakpoints; the stub then emulates write
    # watchpoints by single-stepping, which gdb cannot tell apart.
    assert "Old value = 0\nNew value = 7\n" in out, out
    assert "Old value = 7\nNew value = 17\n" in out, out
    assert t.finish()[0] == 0


def test_hardware_breakpoint(start: Start) -> None:
    t = start("gdbtarget")
    out = gdb(t, "gdbtarget", "hbreak add_step", "continue", "print x", "delete", "continue")
    if "hw breakpoints yes" in t.caps:
        assert "Hardware assisted breakpoint 1 at" in out
        assert "add_step (x=x@entry=0, y=y@entry=7)" in out and "$1 = 0" in out, out
        assert "exited normally" in out
    else:
        assert "hw breakpoints no" in t.caps
    t.finish()


def test_ctrl_c_interrupts_a_spinning_guest(start: Start) -> None:
    t = start("gdbtarget", "spin")
    g = subprocess.Popen(gdb_cmd(t, "gdbtarget", "continue", "print gdb_release",
                                 "set var gdb_release = 1", "continue"),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # the guest announces the spin on stdout; give gdb time to be in `continue`
        assert t.proc.stdout is not None
        os.set_blocking(t.proc.stdout.fileno(), True)
        seen = b""
        while b"spinning" not in seen:
            chunk = os.read(t.proc.stdout.fileno(), 4096)
            assert chunk, "guest output ended"
            seen += chunk
        time.sleep(1.0)
        g.send_signal(signal.SIGINT)      # gdb turns this into a 0x03 on the wire
        out, _ = g.communicate(timeout=120)
    finally:
        if g.poll() is None:
            g.kill()
    assert "Program received signal SIGINT" in out, out
    assert "gdbtarget/main.c:24" in out and "$1 = 0" in out, out
    assert "exited normally" in out, out
    status, stdout, _ = t.finish()
    assert status == 0 and "total=65" in seen.decode() + stdout


def test_detach_lets_the_guest_finish(start: Start) -> None:
    t = start("gdbtarget")
    out = gdb(t, "gdbtarget", "break add_step", "continue", "detach")
    assert "Detaching from program" in out or "detached" in out, out
    status, stdout, _ = t.finish()
    assert status == 0 and "total=65 counter=65" in stdout


def test_quit_kills(start: Start) -> None:
    t = start("gdbtarget")
    gdb(t, "gdbtarget", "break add_step", "continue")     # batch end = kill
    status, stdout, err = t.finish()
    assert status == 1
    assert "total=" not in stdout
    assert err.splitlines()[-1] == "pytender: gdb: guest killed by the debugger"


def test_guest_text_stays_read_only(start: Start) -> None:
    """Breakpoints in the page that wtext then writes: the guest's write
    must still fault (the stub made the page writable only while patching)."""
    t = start("wtext")
    out = gdb(t, "wtext", "break victim", "break app_main", "continue", "delete",
              "continue")
    assert "Breakpoint 2, app_main" in out, out
    status, _, err = t.finish()
    assert status == 1 and "host/guest translation fault" in err, err


def test_guest_exit_status_reaches_gdb(start: Start) -> None:
    t = start("exit", "exit 3")
    out = gdb(t, "exit", "continue")
    assert "[Inferior 1 (Remote target) exited with code 03]" in out, out
    assert t.finish()[0] == 3


# --- raw protocol ---------------------------------------------------------------

class Raw:
    def __init__(self, port: int) -> None:
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""

    def send(self, payload: bytes, checksum: int | None = None) -> None:
        cs = sum(payload) & 0xFF if checksum is None else checksum
        self.s.sendall(b"$" + payload + b"#%02x" % cs)

    def _fill(self) -> None:
        data = self.s.recv(65536)
        assert data, "stub closed the connection"
        self.buf += data

    def reply(self) -> bytes:
        while True:
            self.buf = self.buf.lstrip(b"+")
            if self.buf.startswith(b"-"):
                self.buf = self.buf[1:]
                return b"-"
            if b"#" in self.buf and len(self.buf) >= self.buf.index(b"#") + 3:
                i = self.buf.index(b"#")
                assert self.buf[:1] == b"$", self.buf
                body, self.buf = self.buf[1:i], self.buf[i + 3 :]
                return body
            self._fill()

    def ask(self, payload: bytes) -> bytes:
        self.send(payload)
        return self.reply()


def test_bad_packets_get_errors_not_crashes(start: Start) -> None:
    t = start("gdbtarget")
    c = Raw(t.port)
    assert b"PacketSize=" in c.ask(b"qSupported:swbreak+")
    assert c.ask(b"?") == b"T05"
    g = c.ask(b"g")
    assert len(g) == 2 * 552 and g[16 * 16 : 16 * 16 + 16] == b"0000100000000000"
    c.s.sendall(b"garbage\x00\xff")                       # noise between packets
    c.send(b"m0,10", checksum=0)                          # bad checksum -> '-'
    assert c.reply() == b"-"
    for bad in (b"m", b"mzz,1", b"m1", b"M100000,2:zz", b"M100000,4:00",
                b"G00", b"p", b"pzz", b"p1000", b"P1000=00", b"Pzz",
                b"Z0", b"Z0,zz,1", b"Z2,100000,3", b"z0,,", b"m" + b"9" * 40 + b",1",
                b"qXfer:features:read:other.xml:0,10", b"qXfer:features:read:target.xml:zz"):
        r = c.ask(bad)
        assert r.startswith(b"E") and len(r) == 3, (bad, r)
    assert c.ask(b"m20000000,4") == b"E01"                # past the end of RAM
    assert c.ask(b"m1fffffff,2") == b"E01"
    assert c.ask(b"vMustReplyEmpty") == b""
    assert c.ask(b"Xdead") == b""                          # unsupported -> empty
    c.send(b"A" * 0x5000)                                  # oversized
    assert c.reply() == b"-"
    xml = c.ask(b"qXfer:features:read:target.xml:0,ffff")
    assert xml.startswith(b"l<?xml") and b"i386:x86-64" in xml and b'name="r15"' in xml
    assert c.ask(b"m100000,4") == bytes(Path(guest("gdbtarget")).read_bytes()[
        0x1000 : 0x1004]).hex().encode()                   # _start (file offset 0x1000)
    c.send(b"k")
    status, stdout, err = t.finish()
    assert status == 1 and "GUEST:" not in stdout
    assert err.splitlines()[-1] == "pytender: gdb: guest killed by the debugger"


def test_listens_on_loopback_only(start: Start) -> None:
    t = start("hello", "Hello_Solo5")
    listening = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, port = local.split(":")
        if state == "0A" and int(port, 16) == t.port:
            listening.append(addr)
    assert listening == ["0100007F"]
    c = Raw(t.port)
    c.send(b"D")
    assert c.reply() == b"OK"
    status, stdout, _ = t.finish()
    assert status == 0 and "SUCCESS" in stdout


def test_port_in_use() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        r = run_tender("--gdb", f"--gdb-port={port}", guest("hello"), "Hello_Solo5")
    finally:
        s.close()
    assert r.status == 1 and r.stdout == b""
    assert r.err.splitlines() == [
        f"pytender: gdb: cannot listen on 127.0.0.1:{port}: Address already in use"]
