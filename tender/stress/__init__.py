"""Reliability runs on real KVM: many guests at once (load), many guests in
a row (leaks), SIGKILL at random points (crash), a full or failing backing
store (faults). `python -m tender.stress --help`; CI runs short versions
(tests/test_stress.py), the README's "Reliability" section the long ones."""
