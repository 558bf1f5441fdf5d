"""Prometheus metrics over running tenders (issue 12 part 3).

`TenderCollector` turns `Tender.stats()` snapshots into metric families,
labelled by guest name (and device, hypercall, exit kind); register it with
any `prometheus_client` registry. `MetricsServer` serves one registry's
`/metrics` on 127.0.0.1 from ONE thread that handles requests one after the
other: no thread per request, so the seccomp filter needs no clone and only
the socket calls listed in `tender.sandbox.METRICS`."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from tender.errors import TenderError
from tender.stats import RunState, Stats

if TYPE_CHECKING:
    from tender.vm import Tender

HOST = "127.0.0.1"
Tenders = Mapping[str, "Tender"]


class MetricsError(TenderError):
    """The metrics endpoint could not be set up (e.g. the port is taken)."""


def _directions(kind: str) -> tuple[str, str]:
    return ("rx", "tx") if kind == "net" else ("read", "write")


def families(snapshots: Mapping[str, Stats]) -> list[Metric]:
    """Pure: snapshots by guest name -> metric families."""
    up = GaugeMetricFamily("pytender_guest_running", "1 while the guest runs", labels=["guest"])
    secs = GaugeMetricFamily("pytender_run_seconds", "Seconds since the VM was set up "
                             "(frozen when the run ends)", labels=["guest"])
    mem = GaugeMetricFamily("pytender_memory_bytes", "Guest-visible memory", labels=["guest"])
    hc = CounterMetricFamily("pytender_hypercalls", "Hypercalls served, both paths",
                             labels=["guest", "hypercall"])
    ex = CounterMetricFamily("pytender_vm_exits", "vCPU run returns by kind",
                             labels=["guest", "kind"])
    ops = CounterMetricFamily("pytender_device_operations", "Device operations",
                              labels=["guest", "device", "direction"])
    nbytes = CounterMetricFamily("pytender_device_bytes", "Device bytes moved",
                                 labels=["guest", "device", "direction"])
    errs = CounterMetricFamily("pytender_device_errors", "Failed device requests",
                               labels=["guest", "device", "direction"])
    drops = CounterMetricFamily("pytender_net_drops", "Transmitted frames dropped",
                                labels=["guest", "device"])
    bad = CounterMetricFamily("pytender_bad_handle", "Requests naming no such device",
                              labels=["guest"])
    # The name predates bhyve (an output format: kept); only KVM fills it.
    host_stat = GaugeMetricFamily("pytender_kvm_stat", "KVM binary statistics (KVM_GET_STATS_FD)",
                                  labels=["guest", "fd", "stat"])
    for guest, s in snapshots.items():
        up.add_metric([guest], 1.0 if s.state is RunState.RUNNING else 0.0)
        secs.add_metric([guest], s.run_time)
        mem.add_metric([guest], float(s.mem_size))
        for name, n in s.hypercalls.items():
            hc.add_metric([guest, name], float(n))
        for kind, n in s.exits.items():
            ex.add_metric([guest, kind], float(n))
        for dev in s.devices.values():
            rd, wr = _directions(dev.kind)
            for way, o, b, e in ((rd, dev.read_ops, dev.read_bytes, dev.read_errors),
                                 (wr, dev.write_ops, dev.write_bytes, dev.write_errors)):
                ops.add_metric([guest, dev.name, way], float(o))
                nbytes.add_metric([guest, dev.name, way], float(b))
                errs.add_metric([guest, dev.name, way], float(e))
            if dev.kind == "net":
                drops.add_metric([guest, dev.name], float(dev.drops))
        bad.add_metric([guest], float(s.bad_handle))
        for fd, values in (("vm", s.kvm.vm), ("vcpu", s.kvm.vcpu)):
            for stat, v in values.items():
                host_stat.add_metric([guest, fd, stat], float(v))
    return [up, secs, mem, hc, ex, ops, nbytes, errs, drops, bad, host_stat]


class TenderCollector(Collector):
    """Metrics of one or many tenders: a mapping guest name -> Tender, or a
    callable returning one (for an orchestrator whose set changes)."""

    def __init__(self, tenders: Tenders | Callable[[], Tenders]) -> None:
        self._tenders = tenders

    def collect(self) -> Iterator[Metric]:
        tenders = self._tenders() if callable(self._tenders) else self._tenders
        yield from families({name: t.stats() for name, t in tenders.items()})


class _Handler(http.server.BaseHTTPRequestHandler):
    registry: CollectorRegistry    # set on the per-server subclass
    timeout = 5.0       # a stalled client must not hold the one serving thread

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404)
            return
        body = generate_latest(self.registry)
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass    # stderr is the tender's diagnostics, not an access log


class _Server(http.server.HTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass    # a client that went away is its own problem: no traceback on stderr


class MetricsServer:
    """`/metrics` of `registry` on 127.0.0.1:`port` (0: any free port, see
    `.port`), served by one daemon thread until `close()`."""

    def __init__(self, registry: CollectorRegistry, port: int) -> None:
        handler = type("Handler", (_Handler,), {"registry": registry})
        try:
            self._httpd = _Server((HOST, port), handler)
        except OSError as exc:
            raise MetricsError(
                f"metrics: cannot listen on {HOST}:{port}: {exc.strerror}") from None
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.5,),
                                        name=f"metrics-{self.port}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/metrics"

    def close(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()


def serve(tenders: Tenders | Callable[[], Tenders], port: int) -> MetricsServer:
    """A fresh registry with one TenderCollector, served on 127.0.0.1:port."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TenderCollector(tenders))
    return MetricsServer(registry, port)
