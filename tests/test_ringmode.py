"""Who serves the net ring (tender.devices.ring.ring_mode): the I/O thread,
or the vCPU thread inline. Both modes on real KVM (taps for the floods,
FramePipes for the hostile entries), whichever one this host picks by
default; the guest cannot tell them apart."""

from __future__ import annotations

import os

import pytest
from conftest import guest
from test_net import FLOOD, GUEST0, TAP0, Netns, flood_received, netns, start
from test_net_pipe import _ring_hostile

from tender.devices import ring

__all__ = ["netns"]     # the fixture, shared with test_net
_M64 = 64 << 20


@pytest.fixture(params=["thread", "inline"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PYTENDER_RING_MODE", request.param)   # the tender inherits it
    return str(request.param)


def test_policy_by_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTENDER_RING_MODE", raising=False)
    for cpus, want in ((1, "inline"), (2, "inline"), (3, "inline"), (4, "thread"),
                       (64, "thread")):
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid, n=cpus: set(range(n)))
        assert ring.ring_mode() == want
    monkeypatch.setenv("PYTENDER_RING_MODE", "inline")
    assert ring.ring_mode() == "inline"
    monkeypatch.setenv("PYTENDER_RING_MODE", "bogus")     # ignored: the policy decides
    assert ring.ring_mode() == "thread"


def test_only_thread_mode_has_an_io_thread(netns: Netns,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The mode really changes who serves: one more thread in the tender."""
    threads = {}
    for m in ("inline", "thread"):
        monkeypatch.setenv("PYTENDER_RING_MODE", m)
        g = start(netns, "--handlers=native", f"--net={TAP0}", guest("net"), GUEST0,
                  "limit", "20")
        threads[m] = len(os.listdir(f"/proc/{g.proc.pid}/task"))   # ip netns exec execs
        p = netns.ping("-f", "-q", "-c", "20", GUEST0)
        r = g.finish()
        assert r.status == 0, r.output
        assert "NET: ring active\n" in r.out
        flood_received(p.stdout, 20)
    assert threads["thread"] == threads["inline"] + 1, threads


def test_flood_ping_in_both_modes(netns: Netns, mode: str) -> None:
    n = FLOOD // 8
    for size in ("56", "1400"):
        g = start(netns, "--handlers=native", f"--net={TAP0}", guest("net"), GUEST0,
                  "limit", str(n))
        p = netns.ping("-f", "-q", "-c", str(n), "-s", size, GUEST0)
        r = g.finish()
        assert r.status == 0, r.output
        assert "NET: ring active\n" in r.out
        assert f"NET: service0 answered {n} echo requests\nSUCCESS\n" in r.out
        flood_received(p.stdout, n)


@pytest.mark.parametrize(("kind", "msg"), [
    ("write-oob", f"Invalid guest access: gpa={_M64 - 1:#x}, sz=16"),
    ("ent-tail-jump", "Invalid guest ring state: ent_head=0 ent_tail=5000"),
    ("write-oob-kick-halt", f"Invalid guest access: gpa={_M64 - 1:#x}, sz=16"),
    ("write-oob-halt", f"Invalid guest access: gpa={_M64 - 1:#x}, sz=16"),
])
def test_fatal_entries_in_both_modes(mode: str, kind: str, msg: str) -> None:
    r = _ring_hostile(kind)
    assert r.status == 1, r.output
    assert r.err == f"pytender: {msg}\n"
    assert "FAILURE" not in r.out


@pytest.mark.parametrize("kind", ["bad-handle", "bad-op"])
def test_survivable_entries_in_both_modes(mode: str, kind: str) -> None:
    r = _ring_hostile(kind)
    assert r.status == 0, r.output
    assert r.out.endswith(f"NET: ring-hostile {kind}\nSUCCESS\n"), r.out
    assert r.err == ""
