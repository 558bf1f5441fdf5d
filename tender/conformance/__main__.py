"""python -m tender.conformance [--tender CMD] [--handlers=native|python] ...

One line per case (`PASS name`, `FAIL name (why)`, `SKIP name (why)`), then
`N passed, N failed` (`, N skipped` when some were). Exit 0 iff nothing failed, 1 if a case
failed, 2 if the suite could not run (bad arguments, guests not found)."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from pathlib import Path

from tender.conformance.cases import CASES
from tender.conformance.runner import (
    SetupError,
    Target,
    Verdict,
    default_jobs,
    find_guests,
    guests_needed,
    pytender_target,
    run_all,
)

EXIT_ALL_PASSED = 0
EXIT_FAILED = 1
EXIT_SETUP = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tender.conformance",
                                description="hvt conformance suite")
    p.add_argument("--tender", metavar="CMD",
                   help="a solo5-hvt-compatible command (split with shlex); "
                        "default: pytender-hvt on this Python")
    p.add_argument("--handlers", choices=("native", "python"),
                   help="pytender's handler mode (default native); not with --tender")
    p.add_argument("--guests", type=Path, metavar="DIR", help="directory of NAME.hvt guests")
    p.add_argument("--jobs", "-j", type=int, default=default_jobs(), help="cases at a time")
    p.add_argument("-k", dest="select", metavar="TEXT", action="append", default=[],
                   help="only cases whose name contains TEXT (repeatable)")
    p.add_argument("--pytender-only", action="store_true",
                   help="with --tender: run the pytender-only cases too (a wrapped pytender)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    return p


def _target(args: argparse.Namespace) -> Target:
    if args.tender is None:
        return pytender_target(args.handlers or "native")
    if args.handlers is not None:
        raise SetupError("--handlers is for the built-in pytender; put options in --tender")
    command = shlex.split(args.tender)
    if not command:
        raise SetupError("--tender needs a command")
    # Cases run in a temporary directory: a relative path must not change meaning.
    found = shutil.which(command[0])
    if found is None:
        raise SetupError(f"--tender: {command[0]}: command not found")
    if "/" in command[0]:
        command[0] = os.path.abspath(found)
    return Target(tuple(command), pytender=args.pytender_only, ring=None)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cases = [c for c in CASES if not args.select or any(s in c.name for s in args.select)]
    if args.list:
        for c in cases:
            print(c.name + (" (pytender-only)" if c.pytender_only else ""))
        return EXIT_ALL_PASSED
    try:
        target = _target(args)
        guests = find_guests(args.guests and args.guests.resolve(), guests_needed(cases))
    except (SetupError, ValueError) as exc:   # ValueError: shlex on unbalanced quotes
        print(f"conformance: {exc}", file=sys.stderr)
        return EXIT_SETUP
    counts = dict.fromkeys(Verdict, 0)
    for result in run_all(cases, target, guests, args.jobs):
        counts[result.verdict] += 1
        print(result.line(), flush=True)
    skipped = counts[Verdict.SKIP]
    print(f"{counts[Verdict.PASS]} passed, {counts[Verdict.FAIL]} failed"
          + (f", {skipped} skipped" if skipped else ""))
    return EXIT_FAILED if counts[Verdict.FAIL] else EXIT_ALL_PASSED


if __name__ == "__main__":
    sys.exit(main())
