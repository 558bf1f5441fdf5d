"""Block devices held by the Python program: the BlockDisk protocol and
MemoryDisk, a disk in process memory.

A MemoryDisk lives in a memfd, so the C twins pread/pwrite it like an image
file while `data` is a live mmap view of the same pages. Any other BlockDisk
(no `fileno()`) is served by the Python block handlers."""

from __future__ import annotations

import mmap
import os
from typing import Protocol, runtime_checkable

from tender.abi import valid_block_size
from tender.errors import UsageError


@runtime_checkable
class BlockDisk(Protocol):
    """What a `BlockSpec(name, disk=...)` object provides. Offsets and
    lengths are whole sectors inside the capacity (the tender checks)."""

    @property
    def capacity(self) -> int: ...          # bytes, a multiple of block_size

    @property
    def block_size(self) -> int: ...        # a power of two >= 512

    def read(self, offset: int, length: int) -> bytes: ...

    def write(self, offset: int, data: bytes) -> None: ...

    def sync(self) -> None: ...


def check_geometry(size: int, block_size: int) -> None:
    if not valid_block_size(block_size):
        raise UsageError("Block size must be a multiple of 2 greater than or equal 512")
    if size < block_size or size % block_size:
        raise UsageError(f"disk size {size} is not a positive multiple of {block_size}")


class MemoryDisk:
    """A block device in memory. `data` is a writable bytes-like view of the
    whole disk: fill it before a run, read it during or after one."""

    def __init__(self, size: int, block_size: int = 512) -> None:
        check_geometry(size, block_size)
        self._size = size
        self._block_size = block_size
        self._fd = os.memfd_create("pytender-disk", os.MFD_CLOEXEC)
        os.ftruncate(self._fd, size)
        self._map = mmap.mmap(self._fd, size)
        self.data = memoryview(self._map)

    @property
    def capacity(self) -> int:
        return self._size

    @property
    def block_size(self) -> int:
        return self._block_size

    def fileno(self) -> int:
        """The memfd; the tender dups it for the native handlers."""
        return self._fd

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self.data[offset : offset + length])

    def write(self, offset: int, data: bytes) -> None:
        self.data[offset : offset + len(data)] = data

    def sync(self) -> None:
        """Memory is as durable as it gets."""

    def close(self) -> None:
        self.data.release()
        self._map.close()
        os.close(self._fd)
