"""BLOCK_WRITE (4) / BLOCK_READ (5): whole sectors at sector-aligned offsets,
one or many per request, bounded by the device capacity."""

from __future__ import annotations

from tender import abi
from tender.errors import BlockIOError, TenderError
from tender.hypercalls.context import Context

SSIZE_MAX = (1 << 63) - 1


def _io(ctx: Context, gpa: int, is_write: bool) -> None:
    mem = ctx.mem
    mem.check_write(gpa, abi.BLOCK.size)
    handle, offset, data, length, _ = mem.read_struct(abi.BLOCK, gpa)
    dev = ctx.blocks.get(handle)
    ret = abi.Result.EINVAL
    tally = ctx.tally
    if dev is None:
        tally.bad_handle += 1
    elif (
        dev is not None
        and length <= SSIZE_MAX
        and offset < dev.capacity
        and offset + length <= dev.capacity
        and offset % dev.block_size == 0
        and length % dev.block_size == 0
    ):
        # A bad buffer is the guest's fault, not the device's: checked first.
        buf = mem.checked(data, length) if is_write else mem.writable(data, length)
        try:
            if is_write:
                dev.write(offset, buf)
            else:
                dev.read(offset, buf)
            ret = abi.Result.OK
            tally.done(handle, is_write, length)
        except BlockIOError:
            # The backing store failed this request, not the tender.
            ret = abi.Result.EUNSPEC
            tally.failed(handle, is_write)
        except TenderError:
            tally.failed(handle, is_write)
            raise
    else:
        tally.failed(handle, is_write)
    abi.RET.pack_into(mem.writable(gpa + abi.BLOCK_RET_OFFSET, 4), 0, ret)


def block_write(ctx: Context, gpa: int) -> None:
    _io(ctx, gpa, True)


def block_read(ctx: Context, gpa: int) -> None:
    _io(ctx, gpa, False)
