"""Per-device counters of the Python reference handlers.

The same fields, in the same order, as `struct vl_dev_counters`
(csrc/vl_stats.h), so the live snapshot adds the two paths field by field.
Only the thread running the guest writes; readers take what the GIL gives
them (an int in a list is replaced whole, never torn)."""

from __future__ import annotations

from enum import IntEnum


class Field(IntEnum):
    RD_OPS = 0      # block read / net rx
    RD_BYTES = 1
    RD_ERRORS = 2
    WR_OPS = 3      # block write / net tx
    WR_BYTES = 4
    WR_ERRORS = 5
    DROPS = 6       # tx frames dropped on a full queue
    RX_EMPTY = 7    # rx polls that found no frame


N_FIELDS = len(Field)


class Tally:
    """Counters of one run, by manifest handle."""

    __slots__ = ("bad_handle", "dev")

    def __init__(self) -> None:
        self.dev: dict[int, list[int]] = {}
        self.bad_handle = 0     # requests that named no device of that kind

    def add(self, handle: int, what: Field, n: int = 1) -> None:
        row = self.dev.get(handle)
        if row is None:
            row = self.dev[handle] = [0] * N_FIELDS
        row[what] += n

    def done(self, handle: int, is_write: bool, nbytes: int) -> None:
        """One successful operation of `nbytes`."""
        self.add(handle, Field.WR_OPS if is_write else Field.RD_OPS)
        self.add(handle, Field.WR_BYTES if is_write else Field.RD_BYTES, nbytes)

    def failed(self, handle: int, is_write: bool) -> None:
        self.add(handle, Field.WR_ERRORS if is_write else Field.RD_ERRORS)

    def row(self, handle: int) -> tuple[int, ...]:
        return tuple(self.dev.get(handle, (0,) * N_FIELDS))
