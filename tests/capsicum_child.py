"""The CLI entry on simulated FreeBSD (tests/bhyve_fake.py) with a
recording Capsicum libc and an audit hook, in its own process (the hook
cannot be removed). SIMULATED, NOT FreeBSD.

One timeline, written as JSON to argv[3]: the fake vmm host's calls
("ioctl_run" for each VM_RUN), the Capsicum calls, every path open
("path_open") and, once cap_enter has returned, every import of a module
not yet loaded ("import"): on FreeBSD each of those would fail with ECAPMODE.
argv[4]: a Capsicum call to fail with EPERM, or ""."""

from __future__ import annotations

import errno
import json
import os
import sys
from typing import Any

from bhyve_fake import SCENARIOS, FakeVmm, StepResult, fake_host, halt
from test_capsicum import RecordingLibc

from tender import cli
from tender.bhyve import ioc


def late_import(v: FakeVmm) -> StepResult:
    """What a lazy import on the run path would do (the control test)."""
    import colorsys  # noqa: F401  # an import statement: both audit events
    return halt(0)(v)


def main(lifecycle: str, scenario: str, out: str, fail: str, argv: list[str]) -> int:
    import tender.bhyve.vm as bhyve_vm
    from tender.freebsd.capsicum import Capsicum

    marker = out + ".running"      # the spin scenario's sign of life, not the tender's
    script = [late_import] if scenario == "late_import" else SCENARIOS[scenario](marker)
    host = fake_host(lifecycle, script)
    libc = RecordingLibc(host.calls, {fail: [errno.EPERM]} if fail else {})
    bhyve_vm.FreeBsdHost = lambda: host  # type: ignore[assignment,misc,return-value]
    Capsicum.load = classmethod(lambda cls: cls(libc))  # type: ignore[method-assign,assignment]
    recording = [True]

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if not recording[0]:
            return
        if event == "open" and isinstance(args[0], (str, bytes)) and args[0] != marker:
            host.calls.append(("path_open", os.fsdecode(args[0])))
        elif event == "import" and libc.entered:
            host.calls.append(("import", str(args[0])))

    sys.addaudithook(hook)
    sys.platform = "freebsd14"
    try:
        return cli.run_hvt("pytender", argv)
    finally:
        recording[0] = False
        timeline = [("ioctl_run",) if c[0] == "ioctl" and c[2] == ioc.VM_RUN_14 else
                    tuple(x.hex() if isinstance(x, bytes) else x for x in c)
                    for c in host.calls]
        with open(out, "w") as f:
            json.dump(timeline, f)


if __name__ == "__main__":
    status = main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    sys.stdout.flush()
    os._exit(status & 0xFF)
