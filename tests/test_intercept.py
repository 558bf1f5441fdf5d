"""Interceptors (issue #8, part 2): Python functions that watch or answer
hypercalls of real guests on real KVM, in both handler modes."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import pytest
from conftest import guest, require_kvm, run_tender

import tender.abi
import tender.vm
from tender import (
    BlockSpec,
    Call,
    HandlerMode,
    Hypercall,
    InterceptError,
    NetSpec,
    Outcome,
    Result,
    Tender,
    VmConfig,
)
from tender.devices import FramePipe, MemoryDisk
from tender.devices import frames as F
from tender.errors import DeviceError
from tender.intercept import BlockWriteArgs, HaltArgs, PutsArgs

MEM = 32 << 20
SECTORS = 8
HOST_MAC = b"\x02\x00\x00\x00\x00\x01"


@pytest.fixture(params=list(HandlerMode), ids=lambda m: m.value)
def mode(request: pytest.FixtureRequest) -> HandlerMode:
    require_kvm()
    mode: HandlerMode = request.param
    return mode


def run(tmp_path: Path, config: VmConfig, intercept: dict[Any, Any]) -> tuple[Outcome, str]:
    out_path = tmp_path / "console"
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        outcome = Tender(config, console_fd=fd, intercept=intercept).run()
    finally:
        os.close(fd)
    return outcome, out_path.read_text()


def blk(mode: HandlerMode, disk: MemoryDisk, *args: bytes) -> VmConfig:
    return VmConfig(kernel=guest("blk"), args=args, mem=MEM, handlers=mode,
                    blocks=(BlockSpec("storage", disk=disk),))


def test_names_are_public() -> None:
    assert tender.Hypercall is tender.abi.Hypercall and tender.Result is tender.abi.Result
    assert tender.Call is Call


def test_third_block_write_fails(tmp_path: Path, mode: HandlerMode) -> None:
    disk = MemoryDisk(SECTORS * 512)
    seen: list[Call] = []

    def third(call: Call) -> Result | None:
        seen.append(call)
        return Result.EUNSPEC if call.seq == 3 else None

    out, text = run(tmp_path, blk(mode, disk, b"write", b"5"),
                    {Hypercall.BLOCK_WRITE: third})
    assert out.exit_code == 1
    assert "FAILURE: write sector 2: ret 3\n" in text
    assert [c.seq for c in seen] == [1, 2, 3]
    first = seen[0].args
    assert isinstance(first, BlockWriteArgs)
    assert (first.handle, first.offset, len(first.data)) == (1, 0, 512)
    assert struct.unpack_from("<QQ", first.data) == (0, 5)     # the guest's pattern
    assert seen[1].args.offset == 512    # type: ignore[union-attr]
    assert bytes(disk.data[: 2 * 512]) == first.data + seen[1].args.data  # type: ignore[union-attr]
    assert bytes(disk.data[2 * 512 :]) == bytes((SECTORS - 2) * 512)   # never written


def test_proceed_runs_the_handler_and_an_answer_still_wins(tmp_path: Path,
                                                           mode: HandlerMode) -> None:
    disk = MemoryDisk(SECTORS * 512)
    results: list[Result] = []

    def written_but_failed(call: Call) -> Result | None:
        results.append(call.proceed())
        assert call.proceed() is results[-1]      # runs once
        return Result.EUNSPEC if call.seq == SECTORS else None

    out, text = run(tmp_path, blk(mode, disk, b"write", b"9"),
                    {Hypercall.BLOCK_WRITE: written_but_failed})
    assert results == [Result.OK] * SECTORS
    assert f"FAILURE: write sector {SECTORS - 1}: ret 3\n" in text and out.exit_code == 1
    for s in range(SECTORS):     # every write reached the disk, the last one too
        assert struct.unpack_from("<QQ", disk.data, s * 512) == (s, 9)


def test_block_read_answered_with_bytes(tmp_path: Path, mode: HandlerMode) -> None:
    disk = MemoryDisk(SECTORS * 512)
    out, text = run(tmp_path, blk(mode, disk, b"verify", b"1"),
                    {Hypercall.BLOCK_READ: lambda call: b"\x07" * call.args.len})
    word = int.from_bytes(b"\x07" * 8, "little")
    assert f"FAILURE: sector 0 mismatch (holds sector {word} seed {word})" in text
    assert out.exit_code == 1


def test_only_intercepted_calls_leave_the_native_path(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Native mode, WALLTIME intercepted: the Python BLOCK_WRITE handler is
    never called (C serves it), the interceptor is."""
    require_kvm()
    python_writes: list[int] = []
    real = tender.vm.dispatch_table

    def counting(has_block: bool, has_net: bool) -> dict[int, Any]:
        table = real(has_block, has_net)
        inner = table[Hypercall.BLOCK_WRITE]

        def block_write(ctx: Any, gpa: int) -> None:
            python_writes.append(gpa)
            inner(ctx, gpa)

        table[Hypercall.BLOCK_WRITE] = block_write
        return table

    monkeypatch.setattr(tender.vm, "dispatch_table", counting)
    disk = MemoryDisk(SECTORS * 512)
    clocks: list[int] = []
    for m in HandlerMode:
        out, _ = run(tmp_path, blk(m, disk, b"write", b"2"),
                     {Hypercall.PUTS: lambda c: clocks.append(c.seq)})
        assert out.exit_code == 0
        assert len(python_writes) == (0 if m is HandlerMode.NATIVE else SECTORS)
    assert clocks


def test_frozen_wall_clock(tmp_path: Path, mode: HandlerMode) -> None:
    out, text = run(tmp_path, VmConfig(kernel=guest("time"), args=(b"wall",), mem=MEM,
                                       handlers=mode),
                    {Hypercall.WALLTIME: lambda call: 42 * 10**9 + call.seq})
    assert out.exit_code == 0
    assert "time: walltime 42000000001 ns, then 42000000002 ns\n" in text


def test_poll_answered_at_once(tmp_path: Path, mode: HandlerMode) -> None:
    waits: list[int] = []

    def no_wait(call: Call) -> tuple[Result, int]:
        waits.append(call.args.timeout_ns)   # type: ignore[union-attr]
        return Result.OK, 0

    out, _ = run(tmp_path, VmConfig(kernel=guest("time"), args=(b"wall",), mem=MEM,
                                    handlers=mode), {Hypercall.POLL: no_wait})
    assert out.exit_code == 0
    # yield() polls until its 10 ms deadline: at once answers mean many calls
    assert waits and all(0 <= t <= 10_000_000 for t in waits)


def test_puts_seen_and_dropped(tmp_path: Path, mode: HandlerMode) -> None:
    lines: list[bytes] = []

    def drop(call: Call) -> Result:
        assert isinstance(call.args, PutsArgs)
        lines.append(call.args.data)
        return Result.OK

    out, text = run(tmp_path, VmConfig(kernel=guest("hello"), args=(b"Hello_Solo5",),
                                       mem=MEM, handlers=mode), {"puts": drop})
    assert out.exit_code == 0 and text == ""
    assert b"Hello, World" in b"".join(lines)


def test_halt_status_replaced(tmp_path: Path, mode: HandlerMode) -> None:
    seen: list[HaltArgs] = []

    def seven(call: Call) -> int:
        assert call.proceed() == 3
        seen.append(call.args)     # type: ignore[arg-type]
        return 7

    out, _ = run(tmp_path, VmConfig(kernel=guest("exit"), args=(b"3",), mem=MEM,
                                    handlers=mode), {Hypercall.HALT: seven})
    assert out.status == 7 and seen == [HaltArgs(3, 0)]


def test_guest_served_entirely_by_interceptors(tmp_path: Path, mode: HandlerMode) -> None:
    """POLL, NET_READ and NET_WRITE answered from Python: ARP and one ping,
    nothing on the pipe, and no net ring offered."""
    pending = [F.arp_request(HOST_MAC, "10.0.0.1", "10.0.0.2")]
    sent: list[F.Frame] = []

    def poll(call: Call) -> tuple[Result, int] | None:
        return (Result.OK, 1 << 1) if pending else None

    def net_read(call: Call) -> bytes | Result:
        return pending.pop(0) if pending else Result.AGAIN

    def net_write(call: Call) -> Result:
        frame = F.parse(call.args.data)    # type: ignore[union-attr]
        sent.append(frame)
        if frame.arp_op == 2:
            pending.append(F.echo_request(HOST_MAC, frame.src, "10.0.0.1", "10.0.0.2", 5, 1))
        return Result.OK

    pipe = FramePipe()
    out, text = run(tmp_path, VmConfig(kernel=guest("net"), mem=MEM, handlers=mode,
                                       args=(b"10.0.0.2", b"limit", b"1"),
                                       nets=(NetSpec("service0", pipe=pipe),)),
                    {Hypercall.POLL: poll, Hypercall.NET_READ: net_read,
                     Hypercall.NET_WRITE: net_write})
    assert out.exit_code == 0, text
    assert "NET: ring inactive\n" in text
    assert [f.arp_op for f in sent[:1]] == [2] and sent[1].icmp_type == 0
    assert pipe.recv(0) is None


@pytest.mark.parametrize("calls,ring", [((Hypercall.PUTS,), True),
                                        ((Hypercall.NET_WRITE,), False),
                                        ((Hypercall.POLL,), False)])
def test_net_ring_only_without_net_interceptors(tmp_path: Path, calls: tuple[Hypercall, ...],
                                                ring: bool) -> None:
    require_kvm()
    out, text = run(tmp_path, VmConfig(kernel=guest("net"), mem=MEM, args=(b"info",),
                                       nets=(NetSpec("service0", pipe=FramePipe()),)),
                    dict.fromkeys(calls, lambda call: None))
    assert out.exit_code == 0
    assert ("NET: ring active\n" in text) == ring


@pytest.mark.parametrize("answer", ["nope", 1.5, True, Result.OK, -1])
def test_bad_walltime_answer_ends_the_run(tmp_path: Path, mode: HandlerMode,
                                          answer: object) -> None:
    def clock(call: Call) -> object:
        return answer

    with pytest.raises(InterceptError, match=r"^WALLTIME interceptor .*clock returned "
                                             r".*; it must return None or an int"):
        run(tmp_path, VmConfig(kernel=guest("time"), args=(b"wall",), mem=MEM,
                               handlers=mode), {Hypercall.WALLTIME: clock})


def test_bad_answers_by_hypercall(tmp_path: Path) -> None:
    require_kvm()
    cases: list[tuple[Hypercall, object, str]] = [
        (Hypercall.BLOCK_WRITE, 0, "a Result"),
        (Hypercall.BLOCK_READ, b"short", "bytes of exactly"),
    ]
    for nr, answer, want in cases:
        with pytest.raises(InterceptError, match=f"^{nr.name} interceptor .* {want}"):
            run(tmp_path, blk(HandlerMode.NATIVE, MemoryDisk(4096), b"full"),
                {nr: lambda call, a=answer: a})
    with pytest.raises(InterceptError, match=r"returned \(<Result.OK: 0>, 64\); .*NET handles"):
        run(tmp_path, VmConfig(kernel=guest("time"), args=(b"wall",), mem=MEM),
            {Hypercall.POLL: lambda call: (Result.OK, 1 << 6)})


def test_interceptor_exception_ends_the_run(tmp_path: Path, mode: HandlerMode) -> None:
    def broken(call: Call) -> None:
        raise ValueError("disk on fire")

    with pytest.raises(InterceptError, match=r"^BLOCK_WRITE interceptor "
                                             r".*broken raised ValueError: disk on fire$"):
        run(tmp_path, blk(mode, MemoryDisk(4096), b"write", b"1"),
            {Hypercall.BLOCK_WRITE: broken})


class FailingDisk:
    """A BlockDisk (no fd, so the Python handlers) whose writes fail."""

    capacity = 4096
    block_size = 512

    def read(self, offset: int, length: int) -> bytes:
        return bytes(length)

    def write(self, offset: int, data: bytes) -> None:
        raise DeviceError("disk unplugged")

    def sync(self) -> None:
        pass


def test_handler_error_through_proceed_stays_the_handlers(tmp_path: Path) -> None:
    require_kvm()
    config = VmConfig(kernel=guest("blk"), args=(b"write", b"1"), mem=MEM,
                      blocks=(BlockSpec("storage", disk=FailingDisk()),))
    with pytest.raises(DeviceError) as plain:
        run(tmp_path, config, {})
    with pytest.raises(DeviceError) as proceeded:
        run(tmp_path, config, {Hypercall.BLOCK_WRITE: lambda call: call.proceed()})
    assert not isinstance(proceeded.value, InterceptError)
    assert proceeded.value.message == plain.value.message


@pytest.mark.parametrize("handlers", ["--handlers=native", "--handlers=python"])
def test_malformed_call_never_reaches_the_interceptor(tmp_path: Path, handlers: str) -> None:
    """hostile puts-oob: the same guest fault, and fn is not called for it."""
    require_kvm()
    script = tmp_path / "s.py"
    script.write_text("import sys\nfrom tender import Hypercall\n"
                      "def f(call):\n    sys.stderr.write(f'SEEN {call.args.data!r}\\n')\n"
                      "intercept = {Hypercall.PUTS: f}\n")
    plain = run_tender(handlers, guest("hostile"), "puts-oob")
    got = run_tender(handlers, f"--script={script}", guest("hostile"), "puts-oob")
    assert got.status == plain.status == 1
    seen = [line for line in got.err.splitlines() if line.startswith("SEEN")]
    assert "Invalid guest access" in got.err
    assert len(seen) == 2 and "mode puts-oob" in seen[1]    # banner, mode line: not the bad one
    assert got.err.splitlines()[-1] == plain.err.splitlines()[-1]


@pytest.mark.parametrize("key", [99, "BLOK_WRITE", 0, None])
def test_unknown_hypercall_key(key: object) -> None:
    with pytest.raises(InterceptError, match="is not a hypercall"):
        Tender(VmConfig(kernel="x"), intercept={key: lambda call: None})


def test_interceptor_must_be_callable() -> None:
    with pytest.raises(InterceptError, match="for PUTS is not callable"):
        Tender(VmConfig(kernel="x"), intercept={Hypercall.PUTS: 3})
