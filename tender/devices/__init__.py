"""Host devices: block images, taps, and Python-backed MemoryDisk/FramePipe.

Names load lazily: the boot path imports tender.devices.block and must not
pay for FramePipe's socket module."""

from __future__ import annotations

from importlib import import_module

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from typing import Any

    from tender.devices.disk import BlockDisk, MemoryDisk
    from tender.devices.pipe import FramePipe

_WHERE = {
    "BlockDisk": "tender.devices.disk", "MemoryDisk": "tender.devices.disk",
    "FramePipe": "tender.devices.pipe",
}

__all__ = ["BlockDisk", "FramePipe", "MemoryDisk"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'tender.devices' has no attribute {name!r}")
