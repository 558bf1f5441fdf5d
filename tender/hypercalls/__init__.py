"""The reference (Python) hypercall handlers and the dispatch table.

Modules register like solo5-hvt's: `core` (WALLTIME, PUTS, POLL) always,
`block` only when a block device is attached, `net` only with a NET device.
HALT is not in the table: the run loop handles it."""

from __future__ import annotations

from tender.abi import Hypercall
from tender.hypercalls.block import block_read, block_write
from tender.hypercalls.clock import walltime
from tender.hypercalls.console import puts
from tender.hypercalls.context import Context, Handler
from tender.hypercalls.net import net_read, net_write
from tender.hypercalls.poll import poll

__all__ = ["Context", "Handler", "dispatch_table"]


def dispatch_table(has_block: bool, has_net: bool) -> dict[int, Handler]:
    table: dict[int, Handler] = {
        Hypercall.WALLTIME: walltime,
        Hypercall.PUTS: puts,
        Hypercall.POLL: poll,
    }
    if has_block:
        table[Hypercall.BLOCK_WRITE] = block_write
        table[Hypercall.BLOCK_READ] = block_read
    if has_net:
        table[Hypercall.NET_WRITE] = net_write
        table[Hypercall.NET_READ] = net_read
    return table
