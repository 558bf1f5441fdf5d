"""One run's Capsicum sandbox (BHYVE_SPEC 9): limit each descriptor as it
is opened, then cap_enter() just before the vCPU loop.

The bhyve backend makes one `Capsicum` per VM and limits its own fds (the
VM fd before guest RAM is mapped from it, so mmap's duplicate inherits the
limit; the vmmctl fd right after the create); tender/sandbox.py limits the
run's devices and enters capability mode. Everything the run still needs
must be imported and opened before then: afterwards a path lookup, a new
import included, fails with ECAPMODE."""

from __future__ import annotations

import errno
from collections.abc import Iterable

from tender.errors import CapsicumError
from tender.freebsd.libc import Libc
from tender.freebsd.rights import CAP_IOCTL, RIGHTS, FdKind, rights_words

# BHYVE_SPEC 2.2 and 9: only the sysctl interface (14, or no /dev/vmmctl)
# destroys the VM by a sysctl write, which capability mode refuses; doing it
# from capability mode needs a Casper system.sysctl channel (not built).
NO_CAPMODE_SYSCTL = ("Capsicum: no capability mode with the hw.vmm sysctls (FreeBSD 14): "
                     "the destroy at exit is a sysctl write and Casper is not implemented; "
                     "descriptors are still limited")


class Capsicum:
    """`libc` None, or `missing` set: this host has no Capsicum, nothing
    is limited and the run says so in one line (tender/sandbox.py)."""

    def __init__(self, libc: Libc | str) -> None:
        self.libc: Libc | None = None if isinstance(libc, str) else libc
        self.missing: str | None = libc if isinstance(libc, str) else None
        self.refused: str | None = None
        self.entered = False

    @classmethod
    def load(cls) -> Capsicum:
        from tender.freebsd import libc

        return cls(libc.load())

    def limit(self, kind: FdKind, fd: int, ioctls: Iterable[int] = ()) -> None:
        """cap_rights_limit to `kind`'s rights; with CAP_IOCTL also
        cap_ioctls_limit to `ioctls` (never "all ioctls")."""
        rights = RIGHTS[kind]
        cmds = tuple(ioctls)
        if (CAP_IOCTL in rights) != bool(cmds):
            raise ValueError(f"{kind.name}: an ioctl allowlist goes with CAP_IOCTL only")
        if self.libc is None:
            return
        try:
            self.libc.cap_rights_limit(fd, rights_words(*rights))
        except OSError as exc:
            self._failed(exc, f"could not limit {kind.value}: cap_rights_limit")
            return
        if cmds:
            try:
                self.libc.cap_ioctls_limit(fd, cmds)
            except OSError as exc:
                self._failed(exc, f"could not limit {kind.value}: cap_ioctls_limit")

    def refuse_capability_mode(self, why: str) -> None:
        self.refused = why

    def enter(self) -> str | None:
        """cap_enter(), unless refused (returned: the run's warning line)."""
        if self.libc is None or self.refused is not None:
            return self.refused
        try:
            self.libc.cap_enter()
        except OSError as exc:
            self._failed(exc, "cap_enter")
            return None
        self.entered = True
        return None

    def _failed(self, exc: OSError, what: str) -> None:
        if exc.errno == errno.ENOSYS:
            # A kernel built without options CAPABILITIES / CAPABILITY_MODE.
            self.libc = None
            self.missing = "the kernel has no Capsicum (ENOSYS)"
            return
        raise CapsicumError(f"Capsicum: {what}: {exc.strerror}") from None
