# python examples/conformance_subset.py: some conformance cases from Python.
from tender.conformance import CASES, Verdict, find_guests, guests_needed, pytender_target, run_all

cases = [c for c in CASES if c.name.startswith("halt-status")]
guests = find_guests(None, guests_needed(cases))
for r in run_all(cases, pytender_target("native"), guests, jobs=2):
    print(r.line())
    assert r.verdict is Verdict.PASS
