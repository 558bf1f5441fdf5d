"""--gdb / --gdb-port=N: a GDB remote-protocol stub for the one guest vCPU.

The vCPU thread serves gdb whenever the guest is stopped (before the first
instruction, at breakpoints, steps, watchpoints, Ctrl-C) and returns to the
run loop on continue/step/detach. Every malformed request gets an error
reply; none ends the run. `k` really kills the guest: the tender exits 1."""

from __future__ import annotations

import enum
import signal
import threading
from typing import Any

from tender.debug import rsp
from tender.debug.conn import LOOPBACK, Connection, Listener
from tender.debug.regs import REGS, RegFile, encode_one, from_bytes, target_xml
from tender.debug.target import HwKind, Stop, Target
from tender.debugview import DebugEventKind, DebugView
from tender.errors import DebugError, TenderError
from tender.exits import HostExit

# Sent to the vCPU thread on Ctrl-C; the debug view makes it end a blocked
# run at once (DebugView.kick_on).
KICK_SIGNAL = signal.SIGUSR2
PACKET_SIZE = 0x1000          # what we accept from gdb (qSupported PacketSize)
MAX_READ = 0x7F0              # bytes per `m` reply, so it fits PACKET_SIZE as hex
SIGINT, SIGTRAP, SIGSEGV = 2, 5, 11


class Action(enum.Enum):
    STAY = 0
    CONTINUE = 1
    STEP = 2
    DETACH = 3
    KILL = 4


def stop_reply(stop: Stop) -> bytes:
    out = b"T%02x" % stop.signal
    if stop.reason in ("swbreak", "hwbreak"):
        out += stop.reason.encode() + b":;"
    elif stop.reason:
        out += stop.reason.encode() + b":%x;" % (stop.addr or 0)
    return out


def _hex_args(text: bytes, n: int, sep: bytes = b",") -> list[int]:
    parts = text.split(sep)
    if len(parts) != n:
        raise ValueError("wrong argument count")
    return [int(p, 16) for p in parts]


class GdbStub:
    def __init__(self, port: int, view: DebugView, mem: Any, kernel: str, diag: Any) -> None:
        if view.no_gdb is not None:
            raise DebugError(view.no_gdb)
        self._listener: Listener | None = Listener(port)
        self.port = self._listener.port
        self.caps = view.caps(mem)
        self.target = Target(view, mem, self.caps)
        self._view = view
        self._kernel = kernel
        self._diag = diag
        self.conn: Connection | None = None
        self._interrupt = threading.Event()
        self._running = False
        self._vcpu_thread = 0
        self._last = Stop(SIGTRAP)
        self._soft: list[tuple[int, bytes | None]] | None = None   # emulated watches
        self._xml = target_xml()

    # --- life cycle --------------------------------------------------------
    def start(self) -> None:
        """Wait for gdb before the guest's first instruction."""
        assert self._listener is not None
        self._diag(f"gdb: {self.caps.host} guest debug: {self.caps.describe()}")
        self._diag(f"gdb: waiting for a connection on {LOOPBACK}:{self.port}")
        self._diag(f"gdb: connect with: gdb -ex 'target remote {LOOPBACK}:{self.port}' "
                   f"{self._kernel}")
        conn = self._listener.accept()
        self._listener = None
        self._diag(f"gdb: connection from {conn.peer}")
        self.conn = conn
        self._vcpu_thread = threading.get_ident()
        self._view.kick_on(KICK_SIGNAL)
        conn.start(self._on_interrupt)
        self._stopped(Stop(SIGTRAP), report=False)

    def on_halt(self, status: int) -> None:
        if self.conn is not None:
            self.conn.send(b"W%02x" % (status & 0xFF))
            self._close_conn()

    def on_error(self) -> None:
        if self.conn is not None:
            self.conn.send(b"X09")
            self._close_conn()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._close_conn()
        self._view.close()

    def _close_conn(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    # --- run-loop side -----------------------------------------------------
    def _on_interrupt(self) -> None:        # reader thread
        self._interrupt.set()
        if self._running:
            signal.pthread_kill(self._vcpu_thread, KICK_SIGNAL)

    def on_exit(self, e: Any) -> bool:
        """Exit hook: claim debug exits (and Ctrl-C kicks) while gdb is here."""
        if self.conn is None:
            return False
        if not isinstance(e, HostExit):     # Retry: a kick (Ctrl-C) or a signal
            if self._interrupt.is_set():
                self._stopped(Stop(SIGINT))
            return True
        ev = self._view.event(e)
        if ev is None:
            return False
        if ev.kind in (DebugEventKind.BREAKPOINT, DebugEventKind.TRAP):
            stop = self.target.debug_stop(ev)
            if self._soft is not None and not stop.reason:
                hit = self._soft_hit(self._soft)
                if hit is None:
                    return True          # still stepping, nothing written yet
                stop = hit
            self._stopped(stop)
            return True
        if ev.kind is DebugEventKind.STUCK:
            bp = self.target.int3_stop()
            if bp is not None:
                self._stopped(bp)
                return True
        # Let the user look at the wreck; resuming then fails as usual.
        self._stopped(Stop(SIGSEGV))
        return False

    def _stopped(self, stop: Stop, *, report: bool = True) -> None:
        self._running = False
        self._soft = None
        self._interrupt.clear()
        self._last = stop
        conn = self.conn
        assert conn is not None
        if report:
            conn.send(stop_reply(stop))
        action = self._serve(conn)
        if action is Action.KILL:
            self._close_conn()
            raise DebugError("gdb: guest killed by the debugger")
        if action is Action.DETACH:
            self.target.clear_all()
            self.target.arm(step=False)
            self._close_conn()
            return
        soft = self.target.soft_watch
        if action is Action.CONTINUE and soft:
            self._soft = [(p.addr, self.target.read_mem(p.addr, p.length)) for p in soft]
        self.target.arm(step=action is Action.STEP or self._soft is not None)
        self._running = True

    def _soft_hit(self, watched: list[tuple[int, bytes | None]]) -> Stop | None:
        for addr, old in watched:
            if self.target.read_mem(addr, len(old or b"")) != old:
                return Stop(SIGTRAP, "watch", addr)
        return None

    def _serve(self, conn: Connection) -> Action:
        while True:
            pkt = conn.next_packet()
            if pkt is None:
                self._diag("gdb: connection closed; detaching, the guest runs on")
                return Action.DETACH
            try:
                reply, action = self.handle(pkt)
            except (ValueError, IndexError, KeyError, OverflowError):
                reply, action = b"E01", Action.STAY
            except TenderError:
                reply, action = b"E02", Action.STAY
            if pkt == b"QStartNoAckMode":
                conn.ack = False
            if reply is not None:
                conn.send(reply)
            if action is not Action.STAY:
                return action

    # --- packets -----------------------------------------------------------
    def handle(self, pkt: bytes) -> tuple[bytes | None, Action]:
        """One request -> (reply or None, what to do next)."""
        t = self.target
        cmd, body = pkt[:1], pkt[1:]
        if cmd == b"?":
            return stop_reply(self._last), Action.STAY
        if cmd == b"g":
            return t.read_regs().encode().hex().encode(), Action.STAY
        if cmd == b"G":
            t.write_regs(RegFile.decode(bytes.fromhex(body.decode())))
            return b"OK", Action.STAY
        if cmd == b"p":
            n = int(body, 16)
            if n >= len(REGS):
                return b"E01", Action.STAY
            name = REGS[n].name
            return encode_one(name, t.read_regs().get(name)).hex().encode(), Action.STAY
        if cmd == b"P":
            num, val = body.split(b"=", 1)
            n = int(num, 16)
            if n >= len(REGS):
                return b"E01", Action.STAY
            reg = REGS[n]
            t.write_regs(t.read_regs().replace(reg.name, from_bytes(reg, bytes.fromhex(
                val.decode()))))
            return b"OK", Action.STAY
        if cmd == b"m":
            addr, length = _hex_args(body, 2)
            data = t.read_mem(addr, min(length, MAX_READ))
            return (b"E01" if data is None else data.hex().encode()), Action.STAY
        if cmd == b"M":
            where, hexdata = body.split(b":", 1)
            addr, length = _hex_args(where, 2)
            data = bytes.fromhex(hexdata.decode())
            if len(data) != length:
                return b"E01", Action.STAY
            return (b"OK" if t.write_mem(addr, data) else b"E01"), Action.STAY
        if cmd in (b"c", b"s", b"C", b"S"):
            self._resume_at(body, signalled=cmd in (b"C", b"S"))
            return None, Action.STEP if cmd in (b"s", b"S") else Action.CONTINUE
        if cmd in (b"Z", b"z"):
            return self._breakpoint(cmd == b"Z", body), Action.STAY
        if cmd == b"D":
            return b"OK", Action.DETACH
        if cmd == b"k":
            return None, Action.KILL
        if pkt.startswith(b"vKill"):
            return b"OK", Action.KILL
        if cmd in (b"H", b"T"):
            return b"OK", Action.STAY
        if cmd == b"q" or cmd == b"Q":
            return self._query(pkt), Action.STAY
        return b"", Action.STAY          # unsupported: gdb falls back

    def _resume_at(self, body: bytes, signalled: bool) -> None:
        """`c addr` / `C sig;addr`: resume at addr; the signal is dropped
        (the guest has no signals)."""
        if signalled:
            body = body.split(b";", 1)[1] if b";" in body else b""
        if body:
            regs = self.target.read_regs()
            self.target.write_regs(regs.replace("rip", int(body, 16)))

    def _breakpoint(self, insert: bool, body: bytes) -> bytes:
        ztype, addr, kind = _hex_args(body.split(b";", 1)[0], 3)
        t = self.target
        if ztype == 0:
            if t.caps.int3 == "none":
                return b""
            ok = t.insert_sw(addr) if insert else t.remove_sw(addr)
            return b"OK" if ok or not insert else b"E01"
        if 1 <= ztype <= 4:
            hk = HwKind(ztype)
            if not t.can_hw(hk):
                return b""       # gdb falls back (software watchpoints)
            ok = t.insert_hw(hk, addr, kind) if insert else t.remove_hw(hk, addr, kind)
            return b"OK" if ok or not insert else b"E01"
        return b""

    def _query(self, pkt: bytes) -> bytes:
        if pkt.startswith(b"qSupported"):
            return (b"PacketSize=%x;qXfer:features:read+;QStartNoAckMode+;"
                    b"swbreak+;hwbreak+" % PACKET_SIZE)
        if pkt == b"QStartNoAckMode":
            return b"OK"
        if pkt.startswith(b"qXfer:features:read:"):
            annex, span = pkt[len(b"qXfer:features:read:"):].split(b":", 1)
            if annex != b"target.xml":
                return b"E00"
            off, length = _hex_args(span, 2)
            chunk = self._xml[off : off + length]
            more = off + length < len(self._xml)
            return (b"m" if more else b"l") + rsp.escape_binary(chunk)
        if pkt == b"qAttached":
            return b"0"          # we created it: quitting gdb kills the guest
        if pkt == b"qC":
            return b"QC1"
        if pkt == b"qfThreadInfo":
            return b"m1"
        if pkt == b"qsThreadInfo":
            return b"l"
        if pkt.startswith(b"qSymbol"):
            return b"OK"
        return b""


__all__ = ["GdbStub", "stop_reply"]
