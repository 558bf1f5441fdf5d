"""N net guests at once in one process, each on its own FramePipe (native
handlers: each has the shared ring and its C I/O thread; python: POLL and
the reference handlers).

Guest i answers for 10.0.x.y (its own address) and exits after one echo.
The harness first resolves every guest by ARP (so all N are up at once),
then pings each with a payload of its own, and checks that each answer came
from the right guest with the right payload and that every run ended 0."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from tender.config import HandlerMode, NetSpec, VmConfig
from tender.devices import frames
from tender.devices.pipe import FramePipe
from tender.session import Outcome
from tender.stress.load import LoadReport
from tender.vm import Tender

MEM = 32 << 20
HOST_MAC = bytes.fromhex("020000000001")
HOST_IP = "10.0.0.1"
REPLY_TIMEOUT = 60.0


def ip_of(i: int) -> str:
    return f"10.0.{i // 200}.{2 + i % 200}"


@dataclass
class _Guest:
    pipe: FramePipe
    tender: Tender
    console: int
    result: Outcome | BaseException | None = None


def _reply(pipe: FramePipe, want: int, deadline: float) -> frames.Frame | None:
    """The next frame of type `want` (ARP reply 2 / ICMP echo reply 0)."""
    while time.monotonic() < deadline:
        raw = pipe.recv(max(0.0, deadline - time.monotonic()))
        if raw is None:
            return None
        f = frames.parse(raw)
        if f.arp_op == want == 2 or (f.icmp_type == want == 0 and f.arp_op is None):
            return f
    return None


def run_threads(kernel: str, n: int, handlers: HandlerMode = HandlerMode.NATIVE) -> LoadReport:
    t0 = time.monotonic()
    guests: list[_Guest] = []
    for i in range(n):
        pipe = FramePipe(mtu=1500)
        cfg = VmConfig(kernel=kernel, args=(ip_of(i).encode(), b"limit", b"1"), mem=MEM,
                       nets=(NetSpec("service0", pipe=pipe),), handlers=handlers)
        console = os.memfd_create(f"pytender-netload-{i}", os.MFD_CLOEXEC)
        guests.append(_Guest(pipe, Tender(cfg, console_fd=console), console))

    def body(g: _Guest) -> None:
        try:
            g.result = g.tender.run()
        except BaseException as exc:    # judged below, per guest
            g.result = exc

    threads = [threading.Thread(target=body, args=(g,)) for g in guests]
    failures: list[str] = []
    macs: dict[int, bytes] = {}
    try:
        for t in threads:
            t.start()
        for i, g in enumerate(guests):
            g.pipe.send(frames.arp_request(HOST_MAC, HOST_IP, ip_of(i)))
        deadline = time.monotonic() + REPLY_TIMEOUT
        for i, g in enumerate(guests):
            f = _reply(g.pipe, 2, deadline)
            if f is None or f.arp_sender_ip != frames.ip4(ip_of(i)):
                failures.append(f"guest {i}: ARP reply {f!r}")
            else:
                macs[i] = f.src
        start_seconds = time.monotonic() - t0
        for i, g in enumerate(guests):
            if i in macs:
                g.pipe.send(frames.echo_request(HOST_MAC, macs[i], HOST_IP, ip_of(i), i, 1,
                                                b"guest-%05d" % i))
        deadline = time.monotonic() + REPLY_TIMEOUT
        for i, g in enumerate(guests):
            if i not in macs:
                continue
            f = _reply(g.pipe, 0, deadline)
            if f is None or f.icmp_payload != b"guest-%05d" % i or f.src != macs[i]:
                failures.append(f"guest {i}: echo reply {f!r}")
    finally:
        for g, t in zip(guests, threads, strict=True):
            t.join(REPLY_TIMEOUT)
            if t.is_alive():
                failures.append("a guest still runs after its echo")
                g.tender.stop()
                t.join()
    for i, g in enumerate(guests):
        if not isinstance(g.result, Outcome) or g.result.exit_code != 0:
            failures.append(f"guest {i}: {g.result!r}, want status 0")
        os.close(g.console)
        g.pipe.close()
    return LoadReport(f"net threads/{handlers.value}", n, 0, start_seconds,
                      time.monotonic() - t0, tuple(failures))
