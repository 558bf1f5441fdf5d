"""The pytest kit for guest authors: the `hvt` fixture.

Registered through the `pytest11` entry point, so installing pytender is
enough. `hvt.run(kernel, *args, ...)` runs one guest in-process on real KVM
and returns an `HvtRun`: status, exit code, console bytes, the tender's
one-line error if it ended the run, and the hypercall trace (the records
`--trace` writes). Nothing heavy is imported until a test runs a guest."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tender.abi import DEFAULT_MEM

if TYPE_CHECKING:
    from tender.config import BlockSpec, HandlerMode, NetSpec
    from tender.devices.disk import BlockDisk
    from tender.devices.pipe import FramePipe
    from tender.intercept import Interceptor
    from tender.session import Outcome


@dataclass(frozen=True)
class HvtRun:
    """How one guest run ended, as a test sees it."""

    status: int | None          # the guest's HALT status; None if the tender ended the run
    exit_code: int              # what `pytender run` would have exited with
    console: bytes              # everything the guest wrote with PUTS
    trace: list[dict[str, Any]] = field(default_factory=list)    # --trace records
    error: str | None = None    # the tender's one-line diagnostic, if it ended the run
    diagnostics: tuple[str, ...] = ()    # warnings printed on the way
    outcome: Outcome | None = None

    @property
    def text(self) -> str:
        return self.console.decode(errors="replace")

    def hypercalls(self, name: str) -> list[dict[str, Any]]:
        """The trace records of one hypercall ("block_write", "puts", ...)."""
        return [r for r in self.trace if r.get("event") == "hypercall" and r["name"] == name]


def _block(name: str, dev: str | os.PathLike[str] | BlockDisk) -> BlockSpec:
    from tender.config import BlockSpec

    if isinstance(dev, str | os.PathLike):
        return BlockSpec(name, os.fspath(dev))
    return BlockSpec(name, disk=dev)


def _net(name: str, dev: str | FramePipe) -> NetSpec:
    from tender.config import NetSpec

    return NetSpec(name, dev) if isinstance(dev, str) else NetSpec(name, pipe=dev)


class Hvt:
    """The `hvt` fixture: runs guests, keeps their files in one tmp dir."""

    def __init__(self, workdir: Path) -> None:
        self._dir = workdir
        self._runs = 0

    def run(
        self,
        kernel: str | os.PathLike[str],
        *args: str | bytes,
        mem: int = DEFAULT_MEM,
        blocks: Mapping[str, str | os.PathLike[str] | BlockDisk] | None = None,
        nets: Mapping[str, str | FramePipe] | None = None,
        intercept: Mapping[Any, Interceptor] | None = None,
        handlers: HandlerMode | str = "native",
        trace: bool = True,
    ) -> HvtRun:
        """Run `kernel` to its end. `mem` in bytes; `blocks` maps device
        names to an image path or a BlockDisk, `nets` to a tap name or a
        FramePipe. With `trace` (the default) every hypercall is recorded,
        which uses the Python handlers, as `--trace` does."""
        from tender.cli import exit_code_for
        from tender.config import HandlerMode, VmConfig
        from tender.errors import TenderError
        from tender.vm import Tender

        self._runs += 1
        base = self._dir / f"run{self._runs}"
        console_path, trace_path = base.with_suffix(".console"), base.with_suffix(".trace")
        diags: list[str] = []
        config = VmConfig(
            kernel=os.fspath(kernel),
            args=tuple(a if isinstance(a, bytes) else os.fsencode(a) for a in args),
            mem=mem,
            blocks=tuple(_block(n, d) for n, d in (blocks or {}).items()),
            nets=tuple(_net(n, d) for n, d in (nets or {}).items()),
            handlers=HandlerMode(handlers),
            trace=str(trace_path) if trace else None,
        )
        fd = os.open(console_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        outcome: Outcome | None = None
        error: str | None = None
        try:
            outcome = Tender(config, console_fd=fd, diag=diags.append,
                             intercept=intercept).run()
            code = outcome.exit_code
        except TenderError as exc:
            error, code = exc.message, exit_code_for(exc)
        finally:
            os.close(fd)
        records = []
        if trace and trace_path.exists():
            records = [json.loads(line) for line in trace_path.read_text().splitlines()]
        return HvtRun(
            status=None if outcome is None else outcome.status, exit_code=code,
            console=console_path.read_bytes(), trace=records, error=error,
            diagnostics=tuple(diags), outcome=outcome,
        )


@pytest.fixture
def hvt(tmp_path_factory: pytest.TempPathFactory) -> Hvt:
    """Run hvt guests on this machine's KVM: `hvt.run(kernel, *args, ...)`.
    Skips the test without a usable /dev/kvm, fails it instead when
    PYTENDER_REQUIRE_KVM=1 (so CI cannot pass by skipping)."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        if os.environ.get("PYTENDER_REQUIRE_KVM") == "1":
            pytest.fail("PYTENDER_REQUIRE_KVM=1 but /dev/kvm is not usable")
        pytest.skip("/dev/kvm is not present or not accessible")
    return Hvt(tmp_path_factory.mktemp("hvt"))
