"""Policy of the seccomp sandbox installed just before the vCPU loop (spec 8.1).

Only what the run loop, the hypercall handlers (both modes), the ring I/O
thread, signal delivery and exit need. No open/openat/socket/execve: a
guest that subverted the tender could not reach a file or the network it
was not given. Installed by the CLI only (a library user's process is its
own business) and never with the debug features (gdb needs sockets,
dumpcore creates a file), as solo5-hvt-debug."""

from __future__ import annotations

import os

from tender.errors import HostError, TenderError
from tender.kvm import ioctls as k

# x86_64 syscall numbers. The set is audited (tender/audit.py,
# tests/test_syscall_audit.py): every syscall the tender makes once sandboxed,
# over the suite's guests in both handler modes and with the ring, is listed
# here; entries no audited run used are in KEPT_UNUSED with the reason they stay.
ALLOWED = {
    "read": 0, "write": 1, "close": 3, "mmap": 9, "mprotect": 10, "munmap": 11,
    "brk": 12, "rt_sigaction": 13, "rt_sigprocmask": 14, "rt_sigreturn": 15,
    "pread64": 17, "pwrite64": 18, "readv": 19, "mremap": 25, "madvise": 28,
    "getpid": 39, "exit": 60, "fdatasync": 75, "gettid": 186, "futex": 202,
    "restart_syscall": 219, "clock_gettime": 228, "exit_group": 231, "epoll_wait": 232,
    "ppoll": 271, "epoll_pwait": 281, "preadv": 295, "preadv2": 327,
}
KEPT_UNUSED = {
    "mmap": "glibc malloc: a guest buffer larger than the audited ones (Python handlers)",
    "brk": "glibc malloc grows the main heap",
    "mremap": "glibc realloc of a large block",
    "mprotect": "glibc malloc grows a thread arena",
    "clock_gettime": "WALLTIME: the vDSO falls back to the syscall on some clock sources",
    "restart_syscall": "the kernel restarts a timed futex wait a signal interrupted",
    "epoll_pwait": "select.epoll.poll: some glibc versions make epoll_wait an epoll_pwait",
    "preadv": "os.preadv: glibc issues preadv or (here) preadv2, by version",
}
# The /metrics thread (tender/metrics.py, --metrics-port), measured with
# `strace -f` on that thread over scrapes, a 404 and the shutdown: accept4,
# getsockname, recvfrom, sendto, shutdown, poll (socket timeouts), plus ioctl
# FIONBIO (the per-connection timeout) and close/futex/mmap/pread64 already
# allowed above. Its listening socket exists before the filter (no socket, bind,
# listen) and one thread serves every request (no clone).
METRICS = {"poll": 7, "sendto": 44, "recvfrom": 45, "shutdown": 48, "getsockname": 51,
           "accept4": 288}
FIONBIO = 0x5421
IOCTL = 16
# Allowed only towards this process (arg 0 = our pid): the ring I/O thread
# kicks the vCPU thread out of KVM_RUN with it.
TGKILL = 234
# vCPU ioctls the loop and its error paths use (GET_REGS: the rip of a
# translation fault or an unhandled exit). GET_SREGS is only for gdb and
# dumpcore, which never run sandboxed.
ALLOWED_IOCTLS = (k.RUN, k.GET_REGS)


def enter(*, metrics: bool = False) -> None:
    """Refuse READ_IMPLIES_EXEC, then install the filter on every thread;
    with `metrics`, also what the /metrics thread needs (METRICS)."""
    from tender._vcpu import ffi, lib

    if lib.vl_read_implies_exec():
        raise TenderError(
            "Cowardly refusing to run with a sys_personality of READ_IMPLIES_EXEC set"
        )
    allowed = {**ALLOWED, **METRICS} if metrics else ALLOWED
    nrs = ffi.new("uint32_t[]", sorted(allowed.values()))
    reqs = ffi.new("uint32_t[]", [*ALLOWED_IOCTLS, *((FIONBIO,) if metrics else ())])
    err = lib.vl_sandbox(nrs, len(nrs), IOCTL, reqs, len(reqs), TGKILL, os.getpid())
    if err:
        raise HostError(f"seccomp: could not install the filter: error {err}")
