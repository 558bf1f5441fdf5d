"""What a hypercall handler may touch: guest memory, attached devices, the
console fd and the poll set. Nothing of KVM."""

from __future__ import annotations

from collections.abc import Callable

from tender.hypercalls.tally import Tally
from tender.memory import GuestMemory
from tender.record import field, record

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from typing import Any

    from tender.devices.block import BlockDevice
    from tender.devices.net import NetDevice
    from tender.devices.poller import Poller


@record
class Context:
    """What every hypercall handler reaches: memory and devices."""

    mem: GuestMemory
    blocks: dict[int, BlockDevice] = field(default_factory=dict)   # by handle
    nets: dict[int, NetDevice] = field(default_factory=dict)       # by handle
    console_fd: int = 1
    poller: Poller | None = None
    tally: Tally = field(default_factory=Tally)     # live counters (Tender.stats)
    # Every module's devices, by module name then handle (blocks and nets too).
    devices: dict[str, dict[int, Any]] = field(default_factory=dict)


Handler = Callable[[Context, int], None]
