"""NET_WRITE (6) / NET_READ (7): one frame per call on a non-blocking tap fd."""

from __future__ import annotations

import os

from tender import abi
from tender.errors import DeviceError
from tender.hypercalls.context import Context
from tender.hypercalls.tally import Field

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from tender.devices.net import NetDevice


def _args(ctx: Context, gpa: int) -> tuple[int, int, int, NetDevice] | None:
    """Decode the argument struct; a bad handle is answered with EINVAL here."""
    ctx.mem.check_write(gpa, abi.NET.size)
    handle, data, length, _ = ctx.mem.read_struct(abi.NET, gpa)
    dev = ctx.nets.get(handle)
    if dev is None:
        ctx.tally.bad_handle += 1
        ctx.mem.write_struct(abi.NET, gpa, handle, data, length, abi.Result.EINVAL)
        return None
    return handle, data, length, dev


def net_write(ctx: Context, gpa: int) -> None:
    args = _args(ctx, gpa)
    if args is None:
        return
    handle, data, length, dev = args
    buf = ctx.mem.checked(data, length)
    try:
        n = os.write(dev.fd, buf)
    except BlockingIOError:
        n = length      # a full FramePipe queue drops the frame, as a full tap does
        ctx.tally.add(handle, Field.DROPS)
    except OSError as exc:
        ctx.tally.failed(handle, True)
        raise DeviceError(f"Fatal error when writing: {exc.strerror}") from None
    else:
        ctx.tally.done(handle, True, n)
    if n != length:
        ctx.tally.failed(handle, True)
        raise DeviceError(f"Fatal error: wrote only {n} out of {length} bytes")
    ctx.mem.write_struct(abi.NET, gpa, handle, data, length, abi.Result.OK)


def net_read(ctx: Context, gpa: int) -> None:
    args = _args(ctx, gpa)
    if args is None:
        return
    handle, data, length, dev = args
    buf = ctx.mem.writable(data, length)
    try:
        n = os.readv(dev.fd, [buf])
    except BlockingIOError:
        n = 0
    except OSError as exc:
        ctx.tally.failed(handle, False)
        raise DeviceError(f"Fatal error when reading: {exc.strerror}") from None
    if n == 0:
        ctx.tally.add(handle, Field.RX_EMPTY)
        ctx.mem.write_struct(abi.NET, gpa, handle, data, length, abi.Result.AGAIN)
    else:
        ctx.tally.done(handle, False, n)
        ctx.mem.write_struct(abi.NET, gpa, handle, data, n, abi.Result.OK)
