"""Host devices: block images, taps, and Python-backed MemoryDisk/FramePipe."""

from tender.devices.disk import BlockDisk, MemoryDisk
from tender.devices.pipe import FramePipe

__all__ = ["BlockDisk", "FramePipe", "MemoryDisk"]
