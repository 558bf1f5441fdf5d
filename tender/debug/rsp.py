"""Pure: GDB remote serial protocol framing (`$data#cs`, acks, ^C).

No sockets here, so the parser can be tested on byte strings and can never
raise on hostile input: every malformed frame becomes a `BadFrame` event."""

from __future__ import annotations

from dataclasses import dataclass

MAX_PACKET = 0x4000      # longest packet body accepted; longer frames are dropped
INTERRUPT_BYTE = 0x03    # gdb's Ctrl-C, sent outside any packet
_ESCAPE = 0x7D


@dataclass(frozen=True)
class Packet:
    data: bytes


@dataclass(frozen=True)
class BadFrame:
    """A frame with a wrong checksum or no end: gdb gets '-' and resends."""

    reason: str


@dataclass(frozen=True)
class Interrupt:
    pass


@dataclass(frozen=True)
class Ack:
    ok: bool


Event = Packet | BadFrame | Interrupt | Ack


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def frame(payload: bytes) -> bytes:
    return b"$" + payload + b"#" + b"%02x" % checksum(payload)


def escape_binary(data: bytes) -> bytes:
    """Binary-data escaping (qXfer replies): `#$}*` become `}` + (byte ^ 0x20)."""
    out = bytearray()
    for b in data:
        if b in b"#$}*":
            out += bytes((_ESCAPE, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


def unescape_binary(data: bytes) -> bytes:
    out = bytearray()
    it = iter(data)
    for b in it:
        if b == _ESCAPE:
            nxt = next(it, None)
            if nxt is None:
                raise ValueError("dangling escape")
            out.append(nxt ^ 0x20)
        else:
            out.append(b)
    return bytes(out)


class Parser:
    """Incremental: feed() socket bytes, get the complete events so far."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._in_packet = False

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        for b in data:
            if not self._in_packet:
                if b == ord("$"):
                    self._in_packet = True
                    self._buf.clear()
                elif b == INTERRUPT_BYTE:
                    events.append(Interrupt())
                elif b in (ord("+"), ord("-")):
                    events.append(Ack(b == ord("+")))
                # anything else between packets is line noise: ignored
                continue
            self._buf.append(b)
            if len(self._buf) > MAX_PACKET + 3:
                self._in_packet = False
                self._buf.clear()
                events.append(BadFrame("packet too long"))
                continue
            # body '#' h h: '#' cannot occur unescaped inside a body
            if len(self._buf) >= 3 and self._buf[-3] == ord("#"):
                body, cs = bytes(self._buf[:-3]), bytes(self._buf[-2:])
                self._in_packet = False
                self._buf.clear()
                try:
                    ok = int(cs, 16) == checksum(body)
                except ValueError:
                    ok = False
                events.append(Packet(body) if ok else BadFrame("bad checksum"))
        return events
