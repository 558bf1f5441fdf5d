"""POLL (3): wait until a NET device is readable or the timeout passes."""

from __future__ import annotations

from tender import abi
from tender.errors import TenderError
from tender.hypercalls.context import Context


def poll(ctx: Context, gpa: int) -> None:
    ctx.mem.check_write(gpa, abi.POLL.size)
    timeout_ns, _, _ = ctx.mem.read_struct(abi.POLL, gpa)
    if ctx.poller is None:
        raise TenderError("internal error: POLL without a wait set")
    ready, n = ctx.poller.wait(timeout_ns)
    ctx.mem.write_struct(abi.POLL, gpa, timeout_ns, ready, n)
