"""tender.metrics and `pytender run --metrics-port`: /metrics scraped over
loopback while real guests run (block guest under the CLI's seccomp filter,
net guest with and without the ring in a namespace of our own, library
runs), counters that rise and agree with the final stats."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, guest, run_tender, tender_cmd
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_net import GUEST0, TAP0, Netns, netns

from tender import BlockSpec, Tender, VmConfig
from tender.errors import Stopped, TenderError
from tender.metrics import TenderCollector

MEM = 64 << 20
DISK = 1 << 20
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    out: Samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        return parse(r.read().decode())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_line(path: Path, text: bytes, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_bytes():
        assert proc.poll() is None, f"tender ended early: {path.read_bytes()!r}"
        assert time.monotonic() < deadline, f"{text!r} never appeared"
        time.sleep(0.05)


def sigterm(proc: subprocess.Popen[bytes]) -> int:
    """Stop a tender that must still be running (the sandbox did not kill it)."""
    assert proc.poll() is None, f"tender already ended: {proc.returncode}"
    proc.send_signal(signal.SIGTERM)
    return proc.wait(30)


def reap(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.mark.usefixtures("kvm")
def test_cli_serves_metrics_under_seccomp(tmp_path: Path) -> None:
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * DISK)
    port = free_port()
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("wb") as fo, err.open("wb") as fe:
        proc = subprocess.Popen(
            tender_cmd(f"--metrics-port={port}", f"--block:storage={disk}", guest("blk"),
                       "write-spin", "5"), cwd=ROOT, stdout=fo, stderr=fe,
            stdin=subprocess.DEVNULL)
    try:
        wait_line(out, b"WRITTEN", proc)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        assert re.search(r"^Seccomp:\s+2$", status, re.M), "the filter is not installed"
        url = f"http://127.0.0.1:{port}/metrics"
        first = scrape(url)
        g = "blk.hvt"
        deadline = time.monotonic() + 60
        while True:
            later = scrape(url)
            if value(later, "pytender_hypercalls_total", guest=g, hypercall="poll") > value(
                    first, "pytender_hypercalls_total", guest=g, hypercall="poll"):
                break
            assert time.monotonic() < deadline, "POLL count never rose"
            time.sleep(0.2)
        for s in (first, later):
            assert value(s, "pytender_guest_running", guest=g) == 1
            assert value(s, "pytender_device_bytes_total", guest=g, device="storage",
                         direction="write") == DISK
            assert value(s, "pytender_hypercalls_total", guest=g,
                         hypercall="block_write") == DISK // 512
            assert value(s, "pytender_memory_bytes", guest=g) > 0
        assert value(later, "pytender_run_seconds", guest=g) > value(
            first, "pytender_run_seconds", guest=g)
        with pytest.raises(urllib.error.HTTPError) as nf:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=10)
        assert nf.value.code == 404
        assert sigterm(proc) == 1
    finally:
        reap(proc)
    assert err.read_text().splitlines() == [
        f"pytender: serving metrics on http://127.0.0.1:{port}/metrics",
        "pytender: Exiting on signal 15",
    ]


@pytest.mark.usefixtures("kvm")
def test_cli_metrics_port_errors_are_one_line(tmp_path: Path) -> None:
    bad = run_tender("--metrics-port=http", guest("hello"))
    assert bad.status == 1
    assert bad.err.splitlines() == ["pytender: Malformed argument to --metrics-port"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run_tender(f"--metrics-port={port}", guest("hello"))
    assert busy.status == 1
    assert busy.err.splitlines() == [
        f"pytender: metrics: cannot listen on 127.0.0.1:{port}: Address already in use"]
    assert "Traceback" not in busy.output


@pytest.mark.usefixtures("kvm")
def test_library_metrics_match_the_final_stats(tmp_path: Path) -> None:
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * DISK)
    console = tmp_path / "console"
    fd = os.open(console, os.O_WRONLY | os.O_CREAT, 0o600)
    said: list[str] = []
    t = Tender(VmConfig(kernel=guest("blk"), args=(b"write-spin", b"9"), mem=MEM,
                        blocks=(BlockSpec("storage", str(disk)),), metrics_port=0),
               console_fd=fd, diag=said.append)
    res: list[object] = []

    def go() -> None:
        try:
            res.append(t.run())
        except (TenderError, Stopped) as exc:
            res.append(exc)

    th = threading.Thread(target=go, daemon=True)
    th.start()
    try:
        deadline = time.monotonic() + 60
        while b"WRITTEN" not in console.read_bytes():
            assert th.is_alive() and time.monotonic() < deadline
            time.sleep(0.05)
        (line,) = said
        url = line.removeprefix("serving metrics on ")
        scraped = scrape(url)
    finally:
        t.stop()
        th.join(60)
        os.close(fd)
    assert isinstance(res[0], Stopped)
    final = t.stats()
    dev = final.devices["storage"]
    g = "blk.hvt"
    # No I/O after WRITTEN: the scrape saw the final device figures.
    assert value(scraped, "pytender_device_bytes_total", guest=g, device="storage",
                 direction="write") == dev.write_bytes == DISK
    assert value(scraped, "pytender_device_operations_total", guest=g, device="storage",
                 direction="write") == dev.write_ops
    for name, n in final.hypercalls.items():
        assert value(scraped, "pytender_hypercalls_total", guest=g, hypercall=name) <= n
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=5)        # served only while running


@pytest.mark.usefixtures("kvm")
def test_one_collector_over_many_tenders() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    done = Tender(VmConfig(kernel=guest("exit"), args=(b"3",), mem=MEM), console_fd=devnull)
    assert done.run().exit_code == 3
    idle = Tender(VmConfig(kernel=guest("hello"), mem=MEM), console_fd=devnull)
    reg = CollectorRegistry()
    reg.register(TenderCollector({"a": done, "b": idle}))
    s = parse(generate_latest(reg).decode())
    assert value(s, "pytender_guest_running", guest="a") == 0
    assert value(s, "pytender_guest_running", guest="b") == 0
    assert value(s, "pytender_hypercalls_total", guest="a", hypercall="halt") == 1
    assert value(s, "pytender_memory_bytes", guest="a") > 0
    assert value(s, "pytender_memory_bytes", guest="b") == 0
    assert ("pytender_hypercalls_total", (("guest", "b"), ("hypercall", "halt"))) not in s


# --- net: the ring thread's counters and the hypercall path ------------------

__all__ = ["netns"]     # the fixture (namespace and tap), shared with test_net


def ns_scrape(ns: Netns, url: str) -> Samples:
    """The tender's loopback is the namespace's: scrape from inside it."""
    got = subprocess.run(
        ns.exec(sys.executable, "-c",
                "import sys, urllib.request; "
                "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read()"
                ".decode())", url),
        capture_output=True, text=True, timeout=30, check=True)
    return parse(got.stdout)


@pytest.mark.parametrize("ring", ["on", "off"])
def test_net_counters_rise_while_pings_flood(netns: Netns, ring: str, tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "out"
    with out.open("wb") as fo:
        proc = subprocess.Popen(
            netns.exec(*tender_cmd(
                f"--metrics-port={port}", f"--net-ring={ring}", f"--net={TAP0}", guest("net"),
                GUEST0)), cwd=ROOT, stdout=fo, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/metrics"
    g, count = "net.hvt", 300
    try:
        wait_line(out, b"NET: serving", proc)
        want = b"NET: ring active" if ring == "on" else b"NET: ring inactive"
        assert want in out.read_bytes()
        before = ns_scrape(netns, url)
        ping = netns.ping("-f", "-q", "-c", str(count), GUEST0, timeout=120)
        assert f"{count} received" in ping.stdout, ping.stdout
        after = ns_scrape(netns, url)
        assert sigterm(proc) == 1
    finally:
        reap(proc)

    def net(s: Samples, metric: str, way: str) -> float:
        return value(s, metric, guest=g, device="service0", direction=way)

    # Every echo request came in and every reply went out (plus ARP).
    for way in ("rx", "tx"):
        assert net(after, "pytender_device_operations_total", way) - net(
            before, "pytender_device_operations_total", way) >= count
        assert net(after, "pytender_device_bytes_total", way) - net(
            before, "pytender_device_bytes_total", way) >= count * 98
        assert net(after, "pytender_device_errors_total", way) == 0
    assert value(after, "pytender_net_drops_total", guest=g, device="service0") == 0
    hc = value(after, "pytender_hypercalls_total", guest=g, hypercall="net_write") \
        if ("pytender_hypercalls_total", (("guest", g), ("hypercall", "net_write"))) in after \
        else 0
    if ring == "on":
        assert hc == 0          # the ring thread moved the frames, not hypercalls
    else:
        assert hc >= count


@pytest.mark.usefixtures("kvm")
def test_readme_live_metrics_snippets_run_as_written() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Live metrics\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    for code in blocks:
        r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr


def _sandboxed(code: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-c", "from tender import sandbox\n" + code],
                          capture_output=True, timeout=60, cwd=ROOT)


def test_the_metrics_widening_is_exact() -> None:
    # Without --metrics-port the filter has none of the metrics calls ...
    r = _sandboxed("import os, socket\na, b = socket.socketpair()\nsandbox.enter()\n"
                   "os.write(1, b'inside\\n')\na.send(b'x')\n")
    assert r.returncode == -signal.SIGSYS and r.stdout == b"inside\n", r
    # ... with it, the serving calls work, and a new socket is still fatal.
    r = _sandboxed("import os, socket\na, b = socket.socketpair()\n"
                   "sandbox.enter(metrics=True)\na.send(b'x')\nassert b.recv(1) == b'x'\n"
                   "a.setblocking(False)\nos.write(1, b'served\\n')\nsocket.socket()\n")
    assert r.returncode == -signal.SIGSYS and r.stdout == b"served\n", r


def test_a_client_that_resets_costs_nothing() -> None:
    code = """
import socket, time, urllib.request
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from tender.metrics import MetricsServer

class Big:
    def collect(self):
        g = GaugeMetricFamily("big", "many samples", labels=["i"])
        for i in range(100000):
            g.add_metric([str(i)], 1.0)
        yield g

reg = CollectorRegistry()
reg.register(Big())
srv = MetricsServer(reg, 0)
s = socket.create_connection(("127.0.0.1", srv.port))
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, bytes([1, 0, 0, 0, 0, 0, 0, 0]))
s.send(b"GET /metrics HTTP/1.0\\r\\n\\r\\n")
s.close()                   # RST before the body (slow to generate) is written
time.sleep(1)
assert b'big{i="99999"} 1.0' in urllib.request.urlopen(srv.url, timeout=30).read()
srv.close()
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert (r.returncode, r.stdout, r.stderr) == (0, "ok\n", "")
