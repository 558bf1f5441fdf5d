"""Command line entry points. The one place where errors become exit codes.

`pytender-hvt` (and `solo5-hvt`) take solo5-hvt's argv; `pytender run`
takes the same grammar after `run`."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

from tender import abi
from tender.argv import Pass1, pass1, pass2_prefix, usage
from tender.errors import Interrupted, TenderError, UsageError, one_line

EXIT_HELP = 1
EXIT_VERSION = 0
# Error class -> exit status. solo5-hvt uses 1 for every tender error (spec
# 7.3: usage, ELF/manifest, KVM, devices, guest faults, signals), so the table
# is short; a new class that needs its own status goes here and nowhere else.
EXIT_CODES: dict[type[BaseException], int] = {
    UsageError: 1,
    Interrupted: 1,
    TenderError: 1,
    KeyboardInterrupt: 1,
}
EXIT_INTERNAL_ERROR = 1


def _say(prog: str, msg: str) -> None:
    os.write(2, f"{prog}: {one_line(msg)}\n".encode(errors="replace"))


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


def exit_code_for(exc: BaseException) -> int:
    """The exit status for an error: the most specific class in EXIT_CODES."""
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return EXIT_INTERNAL_ERROR


def run_hvt(prog: str, argv: list[str]) -> int:
    """solo5-hvt semantics; returns the process exit status."""
    # A closed stdout ends the tender with SIGPIPE, as it does solo5-hvt.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
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

        guest = load_guest(VmConfig(kernel=p1.kernel))
        config, option_error = pass2_prefix(p1, guest[2])
        if option_error is not None:
            # solo5-hvt opens devices as it parses: those before the bad
            # option fail first.
            Tender(config, guest=guest).open_devices()
            raise option_error
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _on_signal)
        tender = Tender(
            config,
            guest=guest,
            diag=lambda m: _say(prog, m),
            kick_signals=(signal.SIGINT, signal.SIGTERM),
            sandbox=os.environ.get("PYTENDER_NO_SECCOMP") != "1",
        )
        return tender.run().exit_code
    except UsageError as exc:
        for line in exc.detail:
            _say(prog, line)
        _say(prog, exc.message)
        os.write(2, usage(prog).encode())
        return exit_code_for(exc)
    except TenderError as exc:
        _say(prog, exc.message)
        return exit_code_for(exc)
    except KeyboardInterrupt as exc:
        _say(prog, f"Exiting on signal {int(signal.SIGINT)}")
        return exit_code_for(exc)
    except Exception as exc:   # a bug: still one line, never a traceback
        _say(prog, f"internal error: {type(exc).__name__}: {exc}")
        return exit_code_for(exc)


def _guarded(prog: str, argv: list[str]) -> int:
    """run_hvt, plus the signal that lands while it reports another error."""
    try:
        return run_hvt(prog, argv)
    except (Interrupted, KeyboardInterrupt) as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT)
        _say(prog, f"Exiting on signal {signum}")
        return exit_code_for(exc)


def _finish(status: int) -> None:
    # The run is over: a late SIGINT/SIGTERM must not interrupt the exit.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    try:
        sys.stdout.flush()
    finally:
        os._exit(status & 0xFF)


def main_hvt() -> None:
    prog = os.path.basename(sys.argv[0]) or "pytender-hvt"
    _finish(_guarded(prog, sys.argv[1:]))


def main() -> None:
    argv = sys.argv[1:]
    prog = "pytender"
    if argv[:1] == ["run"]:
        _finish(_guarded(prog, argv[1:]))
    if argv[:1] in (["--version"], ["version"]):
        _finish(_guarded(prog, ["--version"]))
    os.write(2, f"usage: {prog} run [ OPTIONS ] [ -- ] KERNEL [ ARGS ]\n\n".encode())
    os.write(2, usage(f"{prog} run").encode())
    _finish(EXIT_HELP)


if __name__ == "__main__":
    main()
