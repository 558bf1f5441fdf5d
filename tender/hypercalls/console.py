"""PUTS (2): one unbuffered write of the guest's bytes to fd 1, unchanged."""

from __future__ import annotations

import os

from tender import abi
from tender.errors import ConsoleError
from tender.hypercalls.context import Context


def puts(ctx: Context, gpa: int) -> None:
    data, length = ctx.mem.read_struct(abi.PUTS, gpa)
    buf = ctx.mem.checked(data, length)
    try:
        os.write(ctx.console_fd, buf)   # short writes are ignored, as upstream
    except BlockingIOError:
        pass
    except OSError as exc:
        raise ConsoleError(f"{ConsoleError.PREFIX}: {exc.strerror}") from None
