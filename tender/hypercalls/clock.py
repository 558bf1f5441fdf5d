"""WALLTIME (1): CLOCK_REALTIME in nanoseconds."""

from __future__ import annotations

import time

from tender import abi
from tender.hypercalls.context import Context


def walltime(ctx: Context, gpa: int) -> None:
    ctx.mem.write_struct(abi.WALLTIME, gpa, time.clock_gettime_ns(time.CLOCK_REALTIME))
