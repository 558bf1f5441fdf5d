"""`@record`: the package's frozen data types. To mypy it *is*
`dataclasses.dataclass` (same field types, frozen-ness and errors); at run
time it is tender._recordimpl, which gives the same classes without
importing dataclasses or exec()ing generated methods (issue 10: those cost
a boot ~30 ms). `field` and `replace` likewise; dataclasses.fields, replace,
asdict and is_dataclass work on records too.

Declare a new data type as

    from tender.record import field, record

    @record(frozen=True)
    class Point:
        x: int
        tags: tuple[str, ...] = field(default=(), repr=False)
"""

from __future__ import annotations

# Not typing.TYPE_CHECKING: typing stays off the boot path (mypy treats any
# name TYPE_CHECKING as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass as record
    from dataclasses import field as field
    from dataclasses import replace as replace
else:
    from tender._recordimpl import field, record, replace

__all__ = ["field", "record", "replace"]
