"""Syscall audit: what the tender really does once it is sandboxed.

`trace(argv)` runs a command (a tender) under ptrace, with python-ptrace's
bindings, following every thread it creates (PTRACE_O_TRACECLONE: the ring
I/O thread, Python's own), and records each syscall entered after the
sandbox is: from the return of the `seccomp(SECCOMP_SET_MODE_FILTER)` call
that installs the filter (csrc/sandbox.c, with TSYNC, so on every thread at
once), plus the request number of every ioctl. `python -m tender.audit`
runs the suite's guests this way and prints the observed set beside the
allowlist (tender.sandbox). python-ptrace is in the `test` extra: nothing
outside this module imports it."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

SYS_IOCTL = 16
SYS_SECCOMP = 317
_WALL = 0x40000000
_SYSCALL_STOP = signal.SIGTRAP | 0x80
_EVENT_CLONE = 3
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class Trace:
    status: int             # exit status, or -N for a signal N
    stdout: bytes
    stderr: bytes
    sandboxed: bool         # the seccomp call returned 0
    threads: int            # tasks seen, the main thread included
    syscalls: frozenset[int]
    ioctls: frozenset[int]  # ioctl request numbers (arg 1)


@dataclass
class _State:
    main: int
    in_syscall: dict[int, bool] = field(default_factory=dict)
    pending_seccomp: set[int] = field(default_factory=set)
    sandboxed: bool = False
    status: int | None = None
    syscalls: set[int] = field(default_factory=set)
    ioctls: set[int] = field(default_factory=set)
    seen: set[int] = field(default_factory=set)


def _traceme() -> None:
    from ptrace.binding import ptrace_traceme

    ptrace_traceme()


def _on_syscall_stop(st: _State, tid: int) -> None:
    from ptrace.binding import ptrace_getregs

    regs = ptrace_getregs(tid)
    entering = not st.in_syscall.get(tid, False)
    st.in_syscall[tid] = entering
    if entering:
        nr = regs.orig_rax
        if st.sandboxed:
            st.syscalls.add(nr)
            if nr == SYS_IOCTL:
                st.ioctls.add(regs.rsi & _MASK64)
        elif nr == SYS_SECCOMP:
            st.pending_seccomp.add(tid)
    elif tid in st.pending_seccomp:
        st.pending_seccomp.discard(tid)
        if regs.rax == 0:
            st.sandboxed = True


def _step(st: _State, tid: int, status: int) -> None:
    """Handle one wait status of task `tid` and let it run on."""
    from ptrace.binding import ptrace_syscall

    if os.WIFEXITED(status) or os.WIFSIGNALED(status):
        if tid == st.main:
            st.status = os.waitstatus_to_exitcode(status)
        st.in_syscall.pop(tid, None)
        return
    if not os.WIFSTOPPED(status):
        return
    st.seen.add(tid)
    sig = os.WSTOPSIG(status)
    deliver = 0
    if sig == _SYSCALL_STOP:
        _on_syscall_stop(st, tid)
    elif sig == signal.SIGTRAP and status >> 16 == _EVENT_CLONE:
        pass                # the new thread reports itself with a SIGSTOP
    elif sig == signal.SIGSTOP and tid not in st.in_syscall:
        st.in_syscall[tid] = False      # a new thread's first stop
    else:
        deliver = sig       # a real signal (SIGTERM, SIGUSR2 kicks, ...)
    try:
        ptrace_syscall(tid, deliver)
    except OSError:
        pass                # the task is gone (e.g. killed by exit_group)


def trace(argv: Sequence[str], *, timeout: float = 120.0, pass_fds: Sequence[int] = (),
          signal_after: float | None = None, env: dict[str, str] | None = None) -> Trace:
    """Run argv traced to its end. `signal_after`: send SIGTERM this many
    seconds after the sandbox is entered (the signal path, sandboxed)."""
    from ptrace.binding import ptrace_setoptions, ptrace_syscall
    from ptrace.binding.func import PTRACE_O_TRACECLONE, PTRACE_O_TRACESYSGOOD

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                pass_fds=tuple(pass_fds), preexec_fn=_traceme, env=env)
        st = _State(proc.pid)
        _, status = os.waitpid(proc.pid, 0)     # stopped at its exec
        ptrace_setoptions(proc.pid, PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE)
        ptrace_syscall(proc.pid, 0)
        deadline = time.monotonic() + timeout
        # os.kill, not Popen's methods: those poll() the child and would eat
        # the ptrace stops this loop waits for.
        killer = threading.Timer(timeout, os.kill, (proc.pid, signal.SIGKILL))
        killer.start()
        sent = False
        try:
            while True:
                try:
                    tid, status = os.waitpid(-1, _WALL)
                except ChildProcessError:
                    break
                _step(st, tid, status)
                if signal_after is not None and st.sandboxed and not sent:
                    threading.Timer(signal_after, os.kill, (proc.pid, signal.SIGTERM)).start()
                    sent = True
        finally:
            killer.cancel()
            proc.returncode = st.status     # reaped by the loop above
        if time.monotonic() > deadline:
            raise TimeoutError(f"traced run did not end in {timeout} s: {argv}")
        out.seek(0)
        err.seek(0)
        return Trace(st.status if st.status is not None else -1, out.read(), err.read(),
                     st.sandboxed, len(st.seen), frozenset(st.syscalls),
                     frozenset(st.ioctls))


# --- the suite's guests, traced -------------------------------------------------

@dataclass(frozen=True)
class Scenario:
    """One guest invocation: its devices are made up per run (4 KiB images,
    seqpacket net devices fed by a Feeder)."""

    guest: str
    args: tuple[str, ...] = ()
    blocks: tuple[str, ...] = ()
    nets: tuple[str, ...] = ()
    signal_after: float | None = None
    fill: bytes = b""       # the start of each block image

    @property
    def name(self) -> str:
        return " ".join((self.guest, *self.args))[:60]


_HOSTILE = ("puts-oob", "arg-last", "bad-nr", "port-in", "port-far", "halt-cookie-oob",
            "walltime-ro", "poll-zero", "pagetables", "triple-fault")
_NET = ("service0",)
SCENARIOS: tuple[Scenario, ...] = (
    Scenario("hello", ("Hello_Solo5",)), Scenario("quiet", ("--solo5:quiet",)),
    Scenario("output", ("Output_Solo5",)), Scenario("globals"), Scenario("exception"),
    Scenario("zeropage"), Scenario("notls"), Scenario("tls"), Scenario("ssp"),
    Scenario("abort"), Scenario("exit", ("42",)), Scenario("fpu"),
    Scenario("wtext"), Scenario("wrodata"), Scenario("rtcheck", ("a", "b")),
    Scenario("gdbtarget"),
    # W^X, CPUID and MSR cases (issue 9): faults the tender classifies.
    *(Scenario("wx", (m,)) for m in ("wtext", "xdata", "wbootinfo", "wpt", "nxe", "rdtext")),
    Scenario("cpu", ("cpuid",)), Scenario("cpu", ("rdmsr", "0x10")),
    Scenario("cpu", ("wrmsr", "0xc0000100")),
    *(Scenario("hostile", (m,)) for m in _HOSTILE),
    *(Scenario("hostileblk", (m,), ("storage",)) for m in ("block-nodev", "block-hugehandle")),
    Scenario("blk", (), ("storage",)), Scenario("blk2", (), ("disk0", "disk1")),
    Scenario("blkbench", ("write", "4096"), ("storage",)),
    Scenario("blkbench", ("null", "100"), ("storage",)),
    Scenario("mft63", (), tuple(f"storage{i}" for i in range(63))),
    Scenario("hold", ("3",), ("storage",), fill=b"go"), Scenario("records", ("20",), ("storage",)),
    Scenario("albatross", ("--name=vm1", "exit", "3"), ("storage",), ("service",)),
    Scenario("albatross", ("--name=vm1", "write", "1"), ("storage",), ("service",),
             signal_after=1.0),
    Scenario("net", ("info",), (), _NET), Scenario("net2", ("info",), (), ("service0", "service1")),
    *(Scenario("hcfuzz", (str(i), "400", f), ("storage",), _NET) for i, f in enumerate(
        ("halt", "puts-last", "ring-oob", "ring-jump", "port-in", "pagefault"))),
    # SIGTERM while sandboxed: the signal latch, teardown and fdatasync paths
    # (time: during its 1 s POLLs; it would take 5 s to finish).
    Scenario("time", (), (), (), signal_after=1.5),
    Scenario("hcfuzz", ("9", "1000000", "halt"), ("storage",), _NET, signal_after=1.0),
)
# A mode is tender options plus NAME=VALUE environment entries. The ring is
# served inline by the vCPU thread on hosts with few CPUs and by the I/O
# thread otherwise (tender.devices.ring.ring_mode): net guests run in both.
RING_THREAD = "PYTENDER_RING_MODE=thread"
MODES: tuple[tuple[str, ...], ...] = (
    ("--handlers=native",), ("--handlers=native", RING_THREAD),
    ("--handlers=native", "--net-ring=off"), ("--handlers=python",))
NET_ONLY = frozenset({RING_THREAD, "--net-ring=off"})


@dataclass(frozen=True)
class AuditRun:
    scenario: Scenario
    mode: tuple[str, ...]
    trace: Trace


def run_scenario(sc: Scenario, mode: tuple[str, ...], guests: str, workdir: str,
                 python: str) -> AuditRun:
    import socket

    from tender.fuzz.hypercalls import Feeder

    env = dict(os.environ, **dict(m.split("=", 1) for m in mode if not m.startswith("-")))
    argv = [python, "-m", "tender.cli", "run", *(m for m in mode if m.startswith("-")),
            "--mem=32"]
    for name in sc.blocks:
        img = os.path.join(workdir, f"{name}.img")
        with open(img, "wb") as f:
            f.write(sc.fill)
            f.truncate(1 << 20 if len(sc.blocks) == 1 else 4096)
        argv.append(f"--block:{name}={img}")
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in sc.nets]
    argv += [f"--net:{n}=@{g.fileno()}" for n, (_, g) in zip(sc.nets, pairs, strict=True)]
    argv += [os.path.join(guests, f"{sc.guest}.hvt"), *sc.args]
    feeders = [Feeder(h) for h, _ in pairs]
    try:
        for fd in feeders:
            fd.__enter__()
        t = trace(argv, pass_fds=[g.fileno() for _, g in pairs], signal_after=sc.signal_after,
                  env=env)
    finally:
        for fd in feeders:
            fd.__exit__()
        for h, g in pairs:
            h.close()
            g.close()
    return AuditRun(sc, mode, t)


def audit(guests: str, python: str, scenarios: Sequence[Scenario] = SCENARIOS
          ) -> list[AuditRun]:
    """Every scenario in every mode that means something for it (the ring
    and its off switch only with a net device)."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="pytender-audit-") as d:
        for sc in scenarios:
            for mode in MODES:
                if NET_ONLY & set(mode) and not sc.nets:
                    continue
                runs.append(run_scenario(sc, mode, guests, d, python))
    return runs


def main() -> int:
    import sys

    from tender import sandbox

    t0 = time.monotonic()
    runs = audit("guests/build", sys.executable)
    used = frozenset().union(*(r.trace.syscalls for r in runs))
    ioctls = frozenset().union(*(r.trace.ioctls for r in runs))
    names = {nr: n for n, nr in sandbox.ALLOWED.items()} | {
        sandbox.IOCTL: "ioctl", sandbox.TGKILL: "tgkill"}
    allowed = frozenset(names)
    print(f"audit: {len(runs)} traced runs in {time.monotonic() - t0:.0f} s, "
          f"{sum(not r.trace.sandboxed for r in runs)} never sandboxed")
    print("used:      " + " ".join(sorted(names.get(n, f"#{n}") for n in used)))
    print("ioctls:    " + " ".join(f"{n:#x}" for n in sorted(ioctls)))
    print("not used:  " + " ".join(sorted(names[n] for n in allowed - used)))
    bad = used - allowed
    bad_ioctls = ioctls - set(sandbox.ALLOWED_IOCTLS)
    print("forbidden: " + (" ".join(f"#{n}" for n in sorted(bad)) or "none") +
          (f", ioctls {sorted(bad_ioctls)}" if bad_ioctls else ""))
    return 1 if bad or bad_ioctls else 0


if __name__ == "__main__":
    raise SystemExit(main())
