"""A block image attached to a BLOCK_BASIC manifest entry."""

from __future__ import annotations

import errno
import fcntl
import os
import struct

from tender.abi import DEFAULT_BLOCK_SIZE
from tender.devices.disk import BlockDisk
from tender.devices.disk import check_geometry as check_disk_geometry
from tender.errors import BlockIOError as BlockIOError  # re-exported: its old home
from tender.errors import DeviceError, UsageError
from tender.record import record


def _lock_holder(fd: int) -> int | None:
    """pid holding a conflicting POSIX lock on fd's file, if any."""
    query = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
    try:
        res = fcntl.fcntl(fd, fcntl.F_GETLK, query)
    except OSError:
        return None
    ltype, _, _, _, pid = struct.unpack("hhqqi4x", res)
    return pid if ltype != fcntl.F_UNLCK else None


class BlockSyncError(DeviceError):
    """The final fdatasync failed: acknowledged writes may be lost."""


@record
class BlockDevice:
    """An open block image attached to a BLOCK_BASIC manifest entry."""

    name: str
    path: str
    fd: int
    capacity: int
    block_size: int = DEFAULT_BLOCK_SIZE

    @classmethod
    def open(cls, name: str, path: str) -> BlockDevice:
        """Open read-write (no create), take an exclusive lock so that two
        tenders never share an image, and size it."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise DeviceError(f"Could not open block device: {path}: {exc.strerror}") from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _lock_holder(fd)
            os.close(fd)
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                who = f" (pid {holder})" if holder else ""
                raise DeviceError(
                    f"Could not attach block device '{name}': {path} is in use by "
                    f"another tender{who}"
                ) from None
            raise DeviceError(f"Could not lock block device: {path}: {exc.strerror}") from None
        try:
            capacity = os.lseek(fd, 0, os.SEEK_END)
        except OSError:
            os.close(fd)
            raise DeviceError(f"{path}: Could not determine capacity") from None
        return cls(name, path, fd, capacity)

    def check_geometry(self) -> None:
        """solo5-hvt's set-up checks, run once the sector size is final."""
        if self.capacity % self.block_size:
            raise DeviceError(
                f"{self.name}: Backing storage size must be block aligned "
                f"({self.block_size} bytes)"
            )
        if self.capacity < self.block_size:
            raise DeviceError(
                f"{self.name}: Backing storage must be at least 1 block "
                f"({self.block_size} bytes) in size"
            )

    def read(self, offset: int, buf: memoryview) -> None:
        done = 0
        while done < len(buf):
            try:
                n = os.preadv(self.fd, [buf[done:]], offset + done)
            except InterruptedError:
                continue
            except OSError as exc:
                raise BlockIOError(f"Error when reading: {exc.strerror}") from None
            if n == 0:
                raise BlockIOError(f"Error: read only {done} out of {len(buf)} bytes")
            done += n

    def write(self, offset: int, buf: memoryview) -> None:
        done = 0
        while done < len(buf):
            try:
                n = os.pwrite(self.fd, buf[done:], offset + done)
            except InterruptedError:
                continue
            except OSError as exc:
                raise BlockIOError(f"Error when writing: {exc.strerror}") from None
            if n == 0:
                raise BlockIOError(f"Error: wrote only {done} out of {len(buf)} bytes")
            done += n

    def sync(self) -> None:
        """Make every acknowledged write durable."""
        os.fdatasync(self.fd)

    def close(self) -> None:
        if self.fd < 0:
            return
        try:
            self.sync()
        except OSError as exc:
            raise BlockSyncError(
                f"{self.name}: fdatasync of {self.path} failed: {exc.strerror}"
            ) from None
        finally:
            os.close(self.fd)
            self.fd = -1


@record
class DiskDevice(BlockDevice):
    """A BlockDisk object (no fd): the Python block handlers call it."""

    disk: BlockDisk | None = None

    def read(self, offset: int, buf: memoryview) -> None:
        assert self.disk is not None
        try:
            data = self.disk.read(offset, len(buf))
        except OSError as exc:
            raise BlockIOError(f"Error when reading: {exc}") from None
        except Exception as exc:
            raise self._broken("read", exc) from exc
        if not isinstance(data, bytes | bytearray | memoryview):
            raise DeviceError(f"{self.name}: the disk's read returned "
                              f"{type(data).__name__}, not bytes")
        if len(data) != len(buf):
            raise BlockIOError(f"Error: read only {len(data)} out of {len(buf)} bytes")
        buf[:] = data

    def write(self, offset: int, buf: memoryview) -> None:
        assert self.disk is not None
        try:
            self.disk.write(offset, bytes(buf))
        except OSError as exc:
            raise BlockIOError(f"Error when writing: {exc}") from None
        except Exception as exc:
            raise self._broken("write", exc) from exc

    def _broken(self, op: str, exc: Exception) -> DeviceError:
        """A bug in the user's disk object (not a failing store): the run
        ends with one line naming the device, as for an interceptor."""
        return DeviceError(f"{self.name}: the disk's {op} raised {type(exc).__name__}: {exc}")

    def sync(self) -> None:
        if self.disk is not None:
            self.disk.sync()

    def close(self) -> None:
        disk, self.disk = self.disk, None
        if disk is not None:
            try:
                disk.sync()
            except Exception as exc:
                raise BlockSyncError(f"{self.name}: sync of the disk failed: {exc}") from None


def open_disk(name: str, disk: BlockDisk) -> BlockDevice:
    """Attach a BlockDisk: one with a `fileno()` (MemoryDisk) is served like
    an image file, natively too; any other through the Python handlers."""
    if not isinstance(disk, BlockDisk) or not all(
            isinstance(v, int) for v in (disk.capacity, disk.block_size)):
        raise UsageError(f"block device '{name}': {type(disk).__name__} is not a BlockDisk "
                         "(int capacity and block_size; read, write, sync)")
    check_disk_geometry(disk.capacity, disk.block_size)
    fileno = getattr(disk, "fileno", None)
    if callable(fileno):
        try:
            fd = os.dup(fileno())
        except OSError as exc:
            raise DeviceError(f"Could not attach block device '{name}': {exc.strerror}") from None
        return BlockDevice(name, "<memory>", fd, disk.capacity, disk.block_size)
    return DiskDevice(name, "<disk>", -1, disk.capacity, disk.block_size, disk)
