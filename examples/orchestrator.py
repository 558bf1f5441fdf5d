"""An example orchestrator: several guests in one process, one thread each,
restarted like Albatross's `--restart-on-fail`, metrics on loopback.

    sudo .venv/bin/python examples/orchestrator.py --port 9464 --dir /tmp/orch

It runs three guests from guests/build (a block guest that writes its disk
and then idles, the clock test that ends with 0, and one that exits 3),
serves their live figures plus its own restart counters on
http://127.0.0.1:PORT/metrics, prints one line per guest run, and on
SIGINT/SIGTERM stops every guest and exits 0.

The restart policy is Albatross's (vmm_core.ml `should_restart`): a stop or
a tender error (exit 1) never restarts; exit 0 never; 1 and 60-64 never;
any other code only with restart-on-fail, and (if given) only for the
listed codes. Unlike Albatross, `max_restarts` bounds a guest that keeps
failing, so the example ends."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from tender import BlockSpec, Tender, TenderError, VmConfig
from tender.errors import Stopped
from tender.metrics import TenderCollector

ROOT = Path(__file__).resolve().parent.parent
GUESTS = ROOT / "guests" / "build"
NEVER = frozenset({1, 60, 61, 62, 63, 64})


@dataclass(frozen=True)
class Policy:
    restart_on_fail: bool = True
    codes: frozenset[int] = frozenset()     # empty: any code not in NEVER
    max_restarts: int = 2


def should_restart(result: int | None, policy: Policy) -> bool:
    """`result`: the guest's exit code, or None for a stop / tender error."""
    if result is None or result == 0 or result in NEVER or not policy.restart_on_fail:
        return False
    return not policy.codes or result in policy.codes


class Supervised(threading.Thread):
    """One guest: run, decide, maybe run again."""

    def __init__(self, name: str, config: VmConfig, console: Path, policy: Policy) -> None:
        super().__init__(name=f"guest-{name}", daemon=True)
        self.guest_name, self.policy = name, policy
        self._console = os.open(console, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.diag: list[str] = []
        self.tender = Tender(config, console_fd=self._console, diag=self.diag.append)
        self.restarts = 0
        self._stopping = threading.Event()

    def run(self) -> None:
        try:
            while True:
                result = self._once()
                if self._stopping.is_set() or not should_restart(result, self.policy) \
                        or self.restarts >= self.policy.max_restarts:
                    return
                self.restarts += 1
        finally:
            os.close(self._console)

    def _once(self) -> int | None:
        try:
            code = self.tender.run().exit_code
        except Stopped:
            print(f"{self.guest_name}: stopped", flush=True)
            return None
        except TenderError as exc:
            print(f"{self.guest_name}: tender error: {exc.message}", flush=True)
            return None
        print(f"{self.guest_name}: exit {code}", flush=True)
        return code

    def stop(self) -> None:
        self._stopping.set()
        self.tender.stop()


class RestartCollector(Collector):
    def __init__(self, guests: list[Supervised]) -> None:
        self._guests = guests

    def collect(self) -> Iterator[Metric]:
        fam = CounterMetricFamily("orchestrator_restarts", "Guest restarts", labels=["guest"])
        for g in self._guests:
            fam.add_metric([g.guest_name], float(g.restarts))
        yield fam


def build(workdir: Path, policy: Policy) -> list[Supervised]:
    disk = workdir / "disk.img"
    with disk.open("wb") as f:
        f.truncate(1 << 20)
    mem = 32 << 20
    specs = {
        "storage": VmConfig(kernel=str(GUESTS / "blk.hvt"), args=(b"write-spin", b"1"),
                            mem=mem, blocks=(BlockSpec("storage", str(disk)),)),
        "clock": VmConfig(kernel=str(GUESTS / "time.hvt"), mem=mem),
        "flaky": VmConfig(kernel=str(GUESTS / "exit.hvt"), args=(b"3",), mem=mem),
    }
    return [Supervised(n, c, workdir / f"{n}.console", policy) for n, c in specs.items()]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--port", type=int, default=0, help="metrics port (0: any free port)")
    ap.add_argument("--dir", type=Path, required=True, help="consoles and the disk image")
    ap.add_argument("--max-restarts", type=int, default=2)
    args = ap.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)

    from prometheus_client.registry import CollectorRegistry

    from tender.metrics import MetricsServer

    guests = build(args.dir, Policy(max_restarts=args.max_restarts))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TenderCollector({g.guest_name: g.tender for g in guests}))
    registry.register(RestartCollector(guests))
    try:
        server = MetricsServer(registry, args.port)
    except TenderError as exc:
        print(f"orchestrator: {exc.message}", file=sys.stderr)
        return 1
    print(f"metrics on {server.url}", flush=True)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    for g in guests:
        g.start()
    while not done.wait(0.2):
        if not any(g.is_alive() for g in guests):
            break
    for g in guests:
        g.stop()
    for g in guests:
        g.join(60)
    server.close()
    for g in guests:
        print(f"{g.guest_name}: {g.restarts} restarts", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
