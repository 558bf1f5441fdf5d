"""The Python end of a conformance case's FramePipe: ARP, then ICMP echo
round trips, each checked. Runs in its own thread next to the tender."""

from __future__ import annotations

import time
from typing import Protocol

from tender.conformance.model import Echo
from tender.devices import frames as F

HOST_MAC = bytes.fromhex("020000000001")


class FrameEnd(Protocol):
    """The host end of a guest NIC: a FramePipe, or a raw socket on a tap."""

    def send(self, frame: bytes) -> None: ...

    def recv(self, timeout: float | None = None) -> bytes | None: ...


def _host_ip(guest_ip: str) -> str:
    return guest_ip.rsplit(".", 1)[0] + ".1"


def _next(pipe: FrameEnd, deadline: float) -> F.Frame | None:
    got = pipe.recv(max(0.0, deadline - time.monotonic()))
    return None if got is None else F.parse(got)


def drive(pipe: FrameEnd, echo: Echo, timeout: float) -> str | None:
    """Run the exchange; None when every reply came back right, else why not."""
    deadline = time.monotonic() + timeout
    host_ip = _host_ip(echo.ip)
    pipe.send(F.arp_request(HOST_MAC, host_ip, echo.ip))
    reply = _next(pipe, deadline)
    if reply is None or reply.arp_op != 2 or reply.arp_sender_ip != F.ip4(echo.ip):
        return f"no ARP reply for {echo.ip} (got {reply})"
    payload = bytes(i & 0xFF for i in range(echo.payload))
    for seq in range(echo.count):
        pipe.send(F.echo_request(HOST_MAC, reply.src, host_ip, echo.ip, 7, seq, payload))
        got = _next(pipe, deadline)
        if got is None:
            return f"no echo reply {seq} from {echo.ip}"
        if (got.icmp_type, got.icmp_seq, got.icmp_payload) != (0, seq, payload):
            return f"echo reply {seq} from {echo.ip} is wrong"
    return None
