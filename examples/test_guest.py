# pytest examples/test_guest.py: installing pytender provides the hvt fixture.
import threading

from tender import Call, Hypercall, Result
from tender.devices import FramePipe, MemoryDisk, frames

MEM = 32 << 20


def third_write_fails(call: Call) -> Result | None:
    return Result.EUNSPEC if call.seq == 3 else None


def test_guest_reports_a_failed_write(hvt):
    run = hvt.run("guests/build/blk.hvt", "write", "1", mem=MEM,
                  blocks={"storage": MemoryDisk(8 * 512)},
                  intercept={Hypercall.BLOCK_WRITE: third_write_fails})
    assert run.exit_code == 1
    assert b"FAILURE: write sector 2: ret 3\n" in run.console
    assert [w["result"]["ret"] for w in run.hypercalls("block_write")] == [0, 0, 3]


def test_frozen_wall_clock(hvt):
    frozen = 1_700_000_000 * 10**9
    run = hvt.run("guests/build/time.hvt", "wall", mem=MEM,
                  intercept={Hypercall.WALLTIME: lambda call: frozen})
    assert run.exit_code == 0
    assert f"time: walltime {frozen} ns, then {frozen} ns\n" in run.text
    assert [r["result"]["nsecs"] for r in run.hypercalls("walltime")] == [frozen, frozen]


def test_ping_answered_from_python(hvt):
    pipe, done = FramePipe(), threading.Event()

    def answer() -> None:
        while not done.is_set():
            frame = pipe.recv(timeout=0.1)
            if frame is None:
                continue
            f = frames.parse(frame)
            if f.arp_op == 1:
                pipe.send(frames.arp_reply(frame, bytes.fromhex("020000000001")))
            elif f.icmp_type == 8:
                pipe.send(frames.echo_reply(frame))

    responder = threading.Thread(target=answer)
    responder.start()
    try:
        run = hvt.run("guests/build/net.hvt", "10.0.0.2", "ping", "10.0.0.1", "2", mem=MEM,
                      nets={"service0": pipe})
    finally:
        done.set()
        responder.join()
    assert run.exit_code == 0 and b"ping: 2 replies\n" in run.console
    assert len(run.hypercalls("net_write")) == 3        # ARP request, two echo requests
