"""KVM's own binary statistics (KVM_GET_STATS_FD, Linux 5.14+).

The fd holds a header, a table of descriptors and a data block of u64
values (Documentation/virt/kvm/api.rst, "KVM_GET_STATS_FD"). The layout is
parsed once (pure: `parse_layout`); each read is one pread of the data block
(`KvmStatsFd.read`), which the seccomp sandbox already allows. Only scalar
statistics (size 1) are kept; histograms are left out."""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from collections.abc import Mapping
from types import MappingProxyType

from tender.kvm.ioctls import GET_STATS_FD
from tender.record import record

# struct kvm_stats_header / kvm_stats_desc (before its name), as the fd's
# bytes are parsed without the compiled module; test_kvm_header holds them
# to <linux/kvm.h>.
_HEADER = struct.Struct("<6I")  # flags name_size num_desc id_offset desc_offset data_offset
_DESC = struct.Struct("<IhHII")  # flags exponent size offset bucket_size, then the name
MAX_DESCRIPTORS = 4096          # a sanity bound: real kernels have < 100


class StatsFormatError(ValueError):
    """The stats fd's content does not parse (never seen from a real kernel)."""


@record(frozen=True)
class StatsLayout:
    """Where each scalar lives in the data block: (name, byte offset)."""

    data_offset: int
    data_size: int
    fields: tuple[tuple[str, int], ...]


def parse_layout(header: bytes, descriptors: bytes) -> StatsLayout:
    """Pure: the header (24 bytes) and the descriptor table -> layout."""
    if len(header) < _HEADER.size:
        raise StatsFormatError("short header")
    _flags, name_size, num_desc, _id_off, _desc_off, data_off = _HEADER.unpack_from(header)
    if num_desc > MAX_DESCRIPTORS or name_size > 4096:
        raise StatsFormatError("implausible header")
    step = _DESC.size + name_size
    if len(descriptors) < step * num_desc:
        raise StatsFormatError("short descriptor table")
    fields: list[tuple[str, int]] = []
    end = 0
    for i in range(num_desc):
        _f, _exp, size, offset, _bucket = _DESC.unpack_from(descriptors, i * step)
        raw = descriptors[i * step + _DESC.size : (i + 1) * step]
        name = raw.split(b"\0", 1)[0].decode("ascii", errors="replace")
        end = max(end, offset + 8 * size)
        if size == 1 and name:
            fields.append((name, offset))
    return StatsLayout(data_off, end, tuple(fields))


def decode_values(layout: StatsLayout, data: bytes) -> Mapping[str, int]:
    """Pure: the data block -> {name: value}."""
    if len(data) < layout.data_size:
        raise StatsFormatError("short data block")
    return MappingProxyType(
        {name: int.from_bytes(data[off : off + 8], "little") for name, off in layout.fields}
    )


class KvmStatsFd:
    """An open stats fd of a VM or vCPU fd, or nothing when the host lacks it."""

    def __init__(self, fd: int, layout: StatsLayout) -> None:
        self._fd = fd
        self._layout = layout

    @classmethod
    def open(cls, owner_fd: int) -> KvmStatsFd | str:
        """The stats fd of `owner_fd`, or why there is none (a short reason)."""
        try:
            fd = fcntl.ioctl(owner_fd, GET_STATS_FD, 0)
        except OSError as exc:
            if exc.errno in (errno.ENOTTY, errno.EINVAL, errno.ENOSYS):
                return "KVM_GET_STATS_FD not supported by this host"
            return f"KVM_GET_STATS_FD failed: {exc.strerror}"
        try:
            os.set_inheritable(fd, False)
            header = os.pread(fd, _HEADER.size, 0)
            _f, name_size, num_desc, _i, desc_off, _d = _HEADER.unpack_from(header)
            table = os.pread(fd, min(num_desc, MAX_DESCRIPTORS) * (_DESC.size + name_size),
                             desc_off)
            return cls(fd, parse_layout(header, table))
        except (OSError, StatsFormatError, struct.error) as exc:
            os.close(fd)
            return f"KVM binary stats unreadable: {exc}"

    def read(self) -> Mapping[str, int]:
        """One pread of the data block; empty once closed."""
        if self._fd < 0:
            return MappingProxyType({})
        data = os.pread(self._fd, self._layout.data_size, self._layout.data_offset)
        return decode_values(self._layout, data)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
