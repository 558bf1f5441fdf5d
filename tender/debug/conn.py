"""The gdb connection: a loopback-only listener and one accepted socket.

A reader thread owns all socket reads, so a Ctrl-C (0x03) from gdb is seen
while the vCPU runs; it calls `on_interrupt`, which kicks the vCPU out of
KVM_RUN. Complete packets go to a queue that the stopped vCPU thread serves."""

from __future__ import annotations

import queue
import socket
import threading
from collections.abc import Callable

from tender.debug import rsp
from tender.errors import DebugError

LOOPBACK = "127.0.0.1"   # never INADDR_ANY: the stub can write guest memory


class Listener:
    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((LOOPBACK, port))
            self.sock.listen(1)
        except OSError as exc:
            self.sock.close()
            raise DebugError(
                f"gdb: cannot listen on {LOOPBACK}:{port}: {exc.strerror}"
            ) from None
        self.port: int = self.sock.getsockname()[1]

    def accept(self) -> Connection:
        peer_sock, peer = self.sock.accept()
        self.sock.close()            # one debugger per run
        peer_sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Connection(peer_sock, f"{peer[0]}:{peer[1]}")

    def close(self) -> None:
        self.sock.close()


class Connection:
    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.ack = True                  # until QStartNoAckMode
        self._packets: queue.Queue[bytes | None] = queue.Queue()
        self._send_lock = threading.Lock()
        self._closed = False
        self._reader: threading.Thread | None = None

    def start(self, on_interrupt: Callable[[], None]) -> None:
        self._reader = threading.Thread(
            target=self._read_loop, args=(on_interrupt,), name="gdb-reader", daemon=True
        )
        self._reader.start()

    def _read_loop(self, on_interrupt: Callable[[], None]) -> None:
        parser = rsp.Parser()
        try:
            while True:
                data = self.sock.recv(4096)
                if not data:
                    break
                for ev in parser.feed(data):
                    if isinstance(ev, rsp.Interrupt):
                        on_interrupt()
                    elif isinstance(ev, rsp.BadFrame):
                        self._raw(b"-")
                    elif isinstance(ev, rsp.Packet):
                        if self.ack:
                            self._raw(b"+")
                        self._packets.put(ev.data)
                    # acks: TCP is reliable and we never resend, so ignore them
        except OSError:
            pass
        self._packets.put(None)          # EOF marker

    def next_packet(self) -> bytes | None:
        """Block for the next packet; None once gdb has gone."""
        return self._packets.get()

    def _raw(self, data: bytes) -> None:
        with self._send_lock:
            if self._closed:
                return
            try:
                self.sock.sendall(data)
            except OSError:
                pass             # gdb went away; the reader sees EOF

    def send(self, payload: bytes) -> None:
        self._raw(rsp.frame(payload))

    def close(self) -> None:
        with self._send_lock:
            if self._closed:
                return
            self._closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
