"""An executable hvt conformance suite: `python -m tender.conformance`.

Our guests' edge cases (every hypercall's valid and invalid paths, ports,
HALT, the memory map, W^X, block and net devices), run against pytender-hvt
or any solo5-hvt-compatible command. See README, "Conformance suite"."""

from tender.conformance.cases import CASES
from tender.conformance.model import Case, Echo, Expect, Kernel
from tender.conformance.runner import (
    Result,
    Target,
    Verdict,
    find_guests,
    guests_needed,
    pytender_target,
    run_all,
)

__all__ = ["CASES", "Case", "Echo", "Expect", "Kernel", "Result", "Target", "Verdict",
           "find_guests", "guests_needed", "pytender_target", "run_all"]
