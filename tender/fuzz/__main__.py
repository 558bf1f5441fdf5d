"""`python -m tender.fuzz [--seed S] [--cases N] [--cli K]`: ELF/manifest
fuzzing through the in-process loader, then all accepted mutants (at most
K) and K rejected ones through the real CLI on KVM.
`python -m tender.fuzz hypercalls ...`: see tender.fuzz.hypercalls."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tender.fuzz import cli_runs, loader


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["hypercalls"]:
        from tender.fuzz import hypercalls

        return hypercalls.main(args[1:])
    ap = argparse.ArgumentParser(prog="python -m tender.fuzz")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--cli", type=int, default=0, help="mutants per class run on KVM")
    ap.add_argument("--guests", default="guests/build")
    a = ap.parse_args(args)
    guests = sorted(Path(a.guests).glob("*.hvt"))
    if not guests:
        print(f"fuzz: no guests in {a.guests} (make -C guests)", file=sys.stderr)
        return 1
    r = loader.run(a.seed, guests, a.cases)
    print(f"elf/manifest: {r.cases} cases, seed {a.seed}, {len(guests)} guests, "
          f"{r.cases / r.seconds:.0f} cases/s, {len(r.failures)} failures")
    for verdict, n in r.verdicts.most_common():
        print(f"{n:9d}  {verdict}")
    bad = len(r.failures)
    for f in r.failures[:20]:
        print(f"FAIL seed {a.seed} case {f.case.index} ({f.case.guest}): {f.error}")
    if a.cli:
        chosen = [c for c in loader.cases(a.seed, guests, a.cases)]
        verdicts = [(c, loader.check(c)) for c in chosen]
        accepted = [c for c, v in verdicts if v == loader.ACCEPTED][:a.cli]
        picked = accepted + cli_runs.sample(
            [(c, v) for c, v in verdicts if v != loader.ACCEPTED], a.cli, a.seed)
        cr = cli_runs.run(picked)
        print(f"cli: {cr.runs} runs on KVM, {len(cr.failures)} failures")
        for key, n in cr.statuses.most_common():
            print(f"{n:9d}  {key}")
        for case, why in cr.failures:
            print(f"FAIL cli seed {a.seed} case {case.index} ({case.guest}): {why}")
        bad += len(cr.failures)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
