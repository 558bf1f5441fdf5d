"""The four Capsicum calls, from FreeBSD's libc through cffi's ABI mode
(no compiler, no ctypes on any run's path). Loaded only on FreeBSD, by
the bhyve backend; a libc without them (not FreeBSD) is reported, not
raised, so the run can say in one line that it has no sandbox."""

from __future__ import annotations

import os
from typing import Any, Protocol

# sys/capsicum.h: cap_ioctl_t is unsigned long; cap_rights_t is the two
# uint64 words of tender/freebsd/rights.py (cap_rights_limit takes them
# by pointer, so no struct is needed: a uint64_t[2] has the same layout).
_CDEF = """
int cap_enter(void);
int cap_rights_limit(int fd, const uint64_t *rights);
int cap_ioctls_limit(int fd, const unsigned long *cmds, size_t ncmds);
"""


class Libc(Protocol):
    """Each call raises OSError with the errno the real call set."""

    def cap_rights_limit(self, fd: int, words: tuple[int, int]) -> None: ...
    def cap_ioctls_limit(self, fd: int, cmds: tuple[int, ...]) -> None: ...
    def cap_enter(self) -> None: ...


class FreeBsdLibc:
    def __init__(self, ffi: Any, lib: Any) -> None:
        self._ffi = ffi
        self._lib = lib

    def _check(self, rc: int) -> None:
        if rc != 0:
            e = self._ffi.errno
            raise OSError(e, os.strerror(e))

    def cap_rights_limit(self, fd: int, words: tuple[int, int]) -> None:
        self._check(self._lib.cap_rights_limit(fd, self._ffi.new("uint64_t[2]", list(words))))

    def cap_ioctls_limit(self, fd: int, cmds: tuple[int, ...]) -> None:
        arr = self._ffi.new("unsigned long[]", list(cmds) or [0])
        self._check(self._lib.cap_ioctls_limit(fd, arr, len(cmds)))

    def cap_enter(self) -> None:
        self._check(self._lib.cap_enter())


def capsicum_ffi() -> Any:
    """A cffi FFI (ABI mode) that knows the three declarations."""
    from cffi import FFI  # type: ignore[import-untyped]  # no stubs installed

    ffi = FFI()
    ffi.cdef(_CDEF)
    return ffi


def load() -> FreeBsdLibc | str:
    """The process's libc, or why it has no Capsicum."""
    try:
        ffi = capsicum_ffi()
        lib = ffi.dlopen(None)
        for name in ("cap_enter", "cap_rights_limit", "cap_ioctls_limit"):
            getattr(lib, name)      # cffi resolves a symbol on first use
    except (ImportError, OSError, AttributeError) as exc:
        return f"libc has no Capsicum ({exc})"
    return FreeBsdLibc(ffi, lib)
