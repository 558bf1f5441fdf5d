"""Syscall audit (issue 13 part 2): every syscall and ioctl request the tender
makes once sandboxed, traced with python-ptrace over all the suite's guests
in both handler modes and with the ring, is in the seccomp allowlist; the
allowlist entries no run used are the documented ones (sandbox.KEPT_UNUSED)."""

from __future__ import annotations

import os
import sys

import pytest
from conftest import GUESTS, guest, require_kvm

from tender import audit, sandbox


@pytest.fixture(scope="module")
def runs() -> list[audit.AuditRun]:
    require_kvm()
    return audit.audit(str(GUESTS), sys.executable)


def _names() -> dict[int, str]:
    return {nr: n for n, nr in sandbox.ALLOWED.items()} | {
        sandbox.IOCTL: "ioctl", sandbox.TGKILL: "tgkill"}


def test_every_guest_and_mode_was_traced_sandboxed(runs: list[audit.AuditRun]) -> None:
    guests = {p.stem for p in GUESTS.glob("*.hvt")}
    assert {r.scenario.guest for r in runs} == guests
    modes = {(r.scenario.guest, r.mode) for r in runs}
    for g in guests:
        assert (g, ("--handlers=python",)) in modes and (g, ("--handlers=native",)) in modes
    assert all(r.trace.sandboxed for r in runs), [
        (r.scenario.name, r.mode) for r in runs if not r.trace.sandboxed]
    # The ring runs traced the I/O thread too.
    assert any(r.trace.threads >= 2 for r in runs if r.scenario.nets and
               audit.RING_THREAD in r.mode)
    # The runs really ran: the signal runs ended by the latch, others by the guest.
    for r in runs:
        if r.scenario.signal_after is not None:
            assert r.trace.status == 1 and b"Exiting on signal 15" in r.trace.stderr, r
        if r.scenario.guest == "hello":
            assert r.trace.status == 0 and b"SUCCESS" in r.trace.stdout


def test_observed_set_is_within_the_allowlist(runs: list[audit.AuditRun]) -> None:
    used = frozenset().union(*(r.trace.syscalls for r in runs))
    ioctls = frozenset().union(*(r.trace.ioctls for r in runs))
    names = _names()
    unused = sorted(names[n] for n in frozenset(names) - used)
    print(f"\naudited syscalls: {sorted(names.get(n, f'#{n}') for n in used)}")
    print(f"audited ioctls: {[hex(n) for n in sorted(ioctls)]}")
    print(f"allowed, unused: {unused}")
    assert used <= frozenset(names), sorted(used - frozenset(names))
    assert ioctls <= set(sandbox.ALLOWED_IOCTLS), [hex(n) for n in ioctls]
    # Each unused entry says why it stays (or it goes from the filter).
    assert set(unused) <= set(sandbox.KEPT_UNUSED), set(unused) - set(sandbox.KEPT_UNUSED)


def test_without_the_sandbox_nothing_counts_as_sandboxed() -> None:
    """The entry point is the seccomp call itself: a run without it records
    nothing (so the audited set is not an artefact of the tracer)."""
    require_kvm()
    env = dict(os.environ, PYTENDER_NO_SECCOMP="1")
    t = audit.trace([sys.executable, "-m", "tender.cli", "run", guest("hello"), "Hello_Solo5"],
                    env=env)
    assert t.status == 0 and b"SUCCESS" in t.stdout
    assert not t.sandboxed and not t.syscalls
    t = audit.trace([sys.executable, "-m", "tender.cli", "run", guest("hello"), "Hello_Solo5"])
    assert t.sandboxed and audit.SYS_IOCTL in t.syscalls

