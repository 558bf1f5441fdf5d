"""Command line entry points. The one place where errors become exit codes.

`pytender-hvt` (and `solo5-hvt`) take solo5-hvt's argv; `pytender run`
takes the same grammar after `run`."""

from __future__ import annotations

import gc
import os
import signal
import sys
from types import FrameType

from tender import abi
from tender.argv import Pass1, pass1, pass2_prefix, usage
from tender.errors import (
    ConsoleError,
    Interrupted,
    Stopped,
    TenderError,
    UsageError,
    one_line,
)

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from tender.vm import Tender

EXIT_HELP = 1
EXIT_VERSION = 0
# Error class -> exit status. solo5-hvt uses 1 for every tender error (spec
# 7.3: usage, ELF/manifest, KVM, devices, guest faults, signals), so the table
# is short; a new class that needs its own status goes here and nowhere else.
# (ConsoleError is the one error that is not a status: solo5-hvt's assert
# makes it SIGABRT, see run_hvt.)
EXIT_CODES: dict[type[BaseException], int] = {
    UsageError: 1,
    Interrupted: 1,
    TenderError: 1,
    KeyboardInterrupt: 1,
}
EXIT_INTERNAL_ERROR = 1


def _say(prog: str, msg: str) -> None:
    try:
        os.write(2, f"{prog}: {one_line(msg)}\n".encode(errors="replace"))
    except OSError:     # stderr gone too (Albatross: fds 0-2 are one FIFO)
        pass


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalLatch:
    """SIGINT/SIGTERM for the whole life of the process (solo5-hvt: one
    `Exiting on signal N` line, exit 1, whatever the number of signals).

    The handler never raises into the tender's own code (only into the
    user's interceptor or --script, see tender/usercode.py, which could
    otherwise hold the exit for ever): an exception landing at a random bytecode
    could be turned into another error by a layer below, or cut short a
    block device's final fdatasync, or (when printed as a traceback) need
    syscalls the sandbox forbids. It records the first signal and asks the
    tender to stop; the run then unwinds through its normal teardown and
    `run_hvt` reports the signal. Later signals find the latch set and
    return at once, so a storm costs nothing."""

    def __init__(self) -> None:
        self.signum = 0
        self.tender: Tender | None = None

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum:
            return
        self.signum = signum
        if self.tender is not None:
            self.tender.interrupt(signum)   # raises into an interceptor or --script

    def install(self) -> None:
        """Take over both signals, then let through any that the native
        launcher held blocked while the interpreter started."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def check(self) -> None:
        """Between steps that cannot be stopped from outside."""
        if self.signum:
            raise Interrupted(self.signum)


def exit_code_for(exc: BaseException) -> int:
    """The exit status for an error: the most specific class in EXIT_CODES."""
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return EXIT_INTERNAL_ERROR


def run_hvt(prog: str, argv: list[str], latch: SignalLatch | None = None,
            sigpipe: signal.Handlers = signal.SIG_DFL, paused_gc: bool = False) -> int:
    """solo5-hvt semantics; returns the process exit status. SIGPIPE: the
    disposition the process inherited (the native launcher sees it; Python
    itself always starts with SIGPIPE ignored). `paused_gc`: the launcher
    started with the cyclic collector off (see _resume_gc)."""
    if latch is None:
        latch = SignalLatch()
        latch.install()
    # A closed stdout ends the tender with SIGPIPE, as it does solo5-hvt;
    # with SIGPIPE ignored (Albatross) the write fails: ConsoleError below.
    signal.signal(signal.SIGPIPE, sigpipe)
    try:
        p1: Pass1 = pass1(argv)
        if p1.action == "help":
            os.write(2, usage(prog).encode())
            return EXIT_HELP
        if p1.action == "version":
            os.write(2, f"{prog} tender, version {abi.SOLO5_VERSION}\n"
                        f"ABI version {abi.HVT_ABI_VERSION}\n".encode())
            return EXIT_VERSION
        from tender.config import VmConfig
        from tender.vm import Tender, load_guest

        latch.check()
        guest = load_guest(VmConfig(kernel=p1.kernel))
        latch.check()
        config, option_error = pass2_prefix(p1, guest[2])
        if option_error is not None:
            # solo5-hvt opens devices as it parses: those before the bad
            # option fail first.
            Tender(config, guest=guest).open_devices()
            raise option_error
        tender = Tender(
            config,
            guest=guest,
            diag=lambda m: _say(prog, m),
            kick_signals=STOP_SIGNALS,
            sandbox=os.environ.get("PYTENDER_NO_SECCOMP") != "1",
        )
        latch.tender = tender
        if latch.signum:    # arrived while the guest was loading
            tender.stop()
        if paused_gc:
            _resume_gc()
        status = tender.run().exit_code
        latch.check()       # arrived as the guest halted: the signal wins
        return status
    except (Interrupted, Stopped) as exc:
        if not latch.signum:    # only the latch stops a CLI run; still one line
            _say(prog, exc.message)
            return exit_code_for(exc)
        _say(prog, f"Exiting on signal {latch.signum}")
        return exit_code_for(Interrupted(latch.signum))
    except ConsoleError as exc:
        # solo5-hvt asserts on a failed console write (spec 4.4): SIGABRT,
        # after our teardown has synced the block devices.
        _say(prog, exc.message)
        os.abort()
    except UsageError as exc:
        for line in exc.detail:
            _say(prog, line)
        _say(prog, exc.message)
        os.write(2, usage(prog).encode())
        return exit_code_for(exc)
    except TenderError as exc:
        _say(prog, exc.message)
        return exit_code_for(exc)
    except Exception as exc:   # a bug: still one line, never a traceback
        _say(prog, f"internal error: {type(exc).__name__}: {exc}")
        return exit_code_for(exc)


def _resume_gc() -> None:
    """The launcher's boot turns the cyclic collector off: start-up builds
    tens of thousands of long-lived objects (modules, classes, functions)
    that it would scan again and again (~2 ms a boot here, bench/README.md).
    They go to the permanent generation, and the collector runs as usual
    for the rest of the process."""
    gc.freeze()
    gc.enable()


def _finish(status: int) -> None:
    # The run is over: a late SIGINT/SIGTERM must not interrupt the exit.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    try:
        sys.stdout.flush()
    finally:
        os._exit(status & 0xFF)


def _pytender(argv: list[str], latch: SignalLatch, sigpipe: signal.Handlers,
              paused_gc: bool) -> int:
    """`pytender COMMAND ...`."""
    prog = "pytender"
    if argv[:1] == ["run"]:
        return run_hvt(prog, argv[1:], latch, sigpipe, paused_gc)
    if argv[:1] in (["--version"], ["version"]):
        return run_hvt(prog, ["--version"], latch)
    if argv[:1] == ["install-monitor"]:
        return _install_monitor(prog, argv[1:], latch)
    if argv:
        _say(prog, f"unknown command {argv[0]!r} (run, install-monitor)")
    os.write(2, f"usage: {prog} run [ OPTIONS ] [ -- ] KERNEL [ ARGS ]\n"
                f"       {prog} install-monitor --prefix DIR\n"
                "\n".encode())
    os.write(2, usage(f"{prog} run").encode())
    return EXIT_HELP


def _install_monitor(prog: str, argv: list[str], latch: SignalLatch) -> int:
    """`pytender install-monitor --prefix DIR` (tender/install.py)."""
    from tender.install import USAGE, install_monitor, parse_args

    try:
        path = install_monitor(parse_args(argv), latch.check)
        latch.check()
    except UsageError as exc:
        _say(prog, exc.message)
        os.write(2, USAGE.encode())
        return exit_code_for(exc)
    except TenderError as exc:
        _say(prog, exc.message)
        return exit_code_for(exc)
    os.write(1, f"{path}\n".encode())
    return 0


def _start(argv0: str, argv: list[str], sigpipe: signal.Handlers = signal.SIG_DFL,
           paused_gc: bool = False) -> None:
    """Every entry point: the latch first, then the command named by argv0."""
    latch = SignalLatch()
    latch.install()
    name = os.path.basename(argv0)
    if name == "pytender":
        _finish(_pytender(argv, latch, sigpipe, paused_gc))
    _finish(run_hvt(name or "pytender-hvt", argv, latch, sigpipe, paused_gc))


def main_hvt() -> None:
    _start(sys.argv[0] or "pytender-hvt", sys.argv[1:])


def main() -> None:
    _start("pytender", sys.argv[1:])


def launched(sigpipe_ignored: bool = False) -> None:
    """Entry from the native launcher (csrc/launcher.c): `python -c BOOT
    LIBDIR SIGPIPE ARGV0 ARGS...`, started with SIGINT/SIGTERM blocked;
    BOOT has taken LIBDIR and SIGPIPE (whether it was inherited ignored)
    and turned the cyclic collector off until the guest runs."""
    _start(sys.argv[1], sys.argv[2:], signal.SIG_IGN if sigpipe_ignored else signal.SIG_DFL,
           paused_gc=not gc.isenabled())


if __name__ == "__main__":
    main()
