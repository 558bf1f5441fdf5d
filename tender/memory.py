"""GuestMemory: the mmap of guest RAM and the ONLY way to reach guest bytes.

Every guest-supplied (gpa, size) goes through `checked` (reads) or `writable`
(host writes on the guest's behalf). The bounds rule is the hvt one:
gpa < M, gpa + size does not wrap, gpa + size < M (strict). `writable`
further refuses the tender's own low memory (page tables, GDT, boot info)
and the read-only segments, whose host pages are mprotect-ed: writing there
from Python would kill the tender with SIGSEGV instead of failing the guest.
"""

from __future__ import annotations

import mmap
import struct

from tender.abi import GUEST_MIN_BASE, PAGE_SIZE
from tender.errors import GuestFault, HostError

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from typing import Any


def bad_access(gpa: int, size: int) -> GuestFault:
    return GuestFault(f"Invalid guest access: gpa=0x{gpa:x}, sz={size}")


class GuestMemory:
    """Guest-physical RAM [0, alloc_size); guest-addressable part [0, size)."""

    def __init__(self, alloc_size: int, size: int, ram: mmap.mmap | None = None) -> None:
        """`ram`: the backend's mapping of guest RAM (owned from now on);
        None allocates an anonymous one."""
        if ram is None:
            try:
                ram = mmap.mmap(
                    -1, alloc_size, mmap.MAP_SHARED | mmap.MAP_ANONYMOUS,
                    mmap.PROT_READ | mmap.PROT_WRITE,
                )
            except OSError:
                raise HostError("Error allocating guest memory") from None
        self._mm = ram
        self.view = memoryview(self._mm)
        self.alloc_size = alloc_size
        self.size = size
        self.write_floor = GUEST_MIN_BASE
        self.read_only: list[tuple[int, int]] = []
        from tender._vcpu import ffi

        self._cbuf: Any = ffi.from_buffer(self._mm)
        self.host_address: int = int(ffi.cast("uintptr_t", self._cbuf))

    # --- checked access for guest-supplied addresses ------------------------
    def check(self, gpa: int, size: int) -> None:
        if gpa < 0 or size < 0 or gpa >= self.size or gpa + size >= self.size:
            raise bad_access(gpa, size)

    def check_write(self, gpa: int, size: int) -> None:
        self.check(gpa, size)
        if gpa < self.write_floor or any(
            gpa < end and gpa + size > start for start, end in self.read_only
        ):
            raise bad_access(gpa, size)

    def checked(self, gpa: int, size: int) -> memoryview:
        self.check(gpa, size)
        return self.view[gpa : gpa + size]

    def writable(self, gpa: int, size: int) -> memoryview:
        self.check_write(gpa, size)
        return self.view[gpa : gpa + size]

    def read_struct(self, layout: struct.Struct, gpa: int) -> tuple[Any, ...]:
        return layout.unpack(self.checked(gpa, layout.size))

    def write_struct(self, layout: struct.Struct, gpa: int, *values: Any) -> None:
        layout.pack_into(self.writable(gpa, layout.size), 0, *values)

    # --- tender-internal set-up (trusted addresses) -------------------------
    def load(self, gpa: int, data: bytes | memoryview) -> None:
        if gpa < 0 or gpa + len(data) > self.alloc_size:
            raise HostError(f"internal: load outside guest memory at 0x{gpa:x}")
        self.view[gpa : gpa + len(data)] = data

    def protect(self, start: int, end: int, prot: int) -> None:
        """mprotect host pages [start, end); read-only ranges are remembered so
        that hypercall writes into them fail the guest, not the tender."""
        from tender._vcpu import lib

        if start % PAGE_SIZE or end % PAGE_SIZE or not 0 <= start < end <= self.alloc_size:
            raise HostError(f"internal: bad protect range 0x{start:x}-0x{end:x}")
        err = lib.vl_mprotect(self._cbuf + start, end - start, prot)
        if err:
            raise HostError("mprotect failed")
        if not prot & mmap.PROT_WRITE:
            self._add_read_only(start, end)

    def _add_read_only(self, start: int, end: int) -> None:
        """Keep read_only sorted and merged (touching ranges become one), so
        that the C side's fixed-size table holds any sane image."""
        ranges = sorted([*self.read_only, (start, end)])
        merged = [ranges[0]]
        for s, e in ranges[1:]:
            if s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        self.read_only = merged

    def close(self) -> None:
        if self._cbuf is None:
            return
        from tender._vcpu import ffi

        try:
            self.view.release()
            ffi.release(self._cbuf)
            self._mm.close()
        except BufferError:
            # A view is still alive (e.g. in the traceback of the error that
            # ended the run); the mapping goes when the last view does.
            pass
        self._cbuf = None
