"""Seeded, reproducible fuzzing of the tender (issue 13 part 1).

`python -m tender.fuzz elf` mutates every built guest and feeds each mutant
to the real loader in process; `--cli N` also runs a sample through the real
CLI on KVM. `python -m tender.fuzz hypercalls` runs the hostile-hypercall
guest. Each prints its count, seed, rate and verdict histogram, and exits 1
if any case broke the contract."""
