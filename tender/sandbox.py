"""Policy of the seccomp sandbox installed just before the vCPU loop (spec 8.1).

Only what the run loop, the hypercall handlers (both modes), the ring I/O
thread, signal delivery and exit need. No open/openat/socket/execve: a
guest that subverted the tender could not reach a file or the network it
was not given. Installed by the CLI only (a library user's process is its
own business) and never with the debug features (gdb needs sockets,
dumpcore creates a file), as solo5-hvt-debug."""

from __future__ import annotations

import os

from tender.errors import KvmError, TenderError
from tender.kvm import ioctls as k

# x86_64 syscall numbers.
ALLOWED = {
    "read": 0, "write": 1, "close": 3, "fstat": 5, "poll": 7, "lseek": 8, "mmap": 9,
    "mprotect": 10, "munmap": 11, "brk": 12, "rt_sigaction": 13, "rt_sigprocmask": 14,
    "rt_sigreturn": 15, "pread64": 17, "pwrite64": 18, "readv": 19, "writev": 20,
    "sched_yield": 24, "mremap": 25, "madvise": 28, "getpid": 39, "exit": 60,
    "fdatasync": 75, "sigaltstack": 131, "gettid": 186, "futex": 202,
    "restart_syscall": 219, "clock_gettime": 228, "clock_nanosleep": 230,
    "exit_group": 231, "epoll_wait": 232, "ppoll": 271, "epoll_pwait": 281,
    "preadv": 295, "pwritev": 296, "getrandom": 318, "preadv2": 327, "pwritev2": 328,
    "rseq": 334,
}
IOCTL = 16
# Allowed only towards this process (arg 0 = our pid): the ring I/O thread
# kicks the vCPU thread out of KVM_RUN with it.
TGKILL = 234
# vCPU ioctls the loop and its error paths use.
ALLOWED_IOCTLS = (k.RUN, k.GET_REGS, k.GET_SREGS)


def enter() -> None:
    """Refuse READ_IMPLIES_EXEC, then install the filter on every thread."""
    from tender._vcpu import ffi, lib

    if lib.vl_read_implies_exec():
        raise TenderError(
            "Cowardly refusing to run with a sys_personality of READ_IMPLIES_EXEC set"
        )
    nrs = ffi.new("uint32_t[]", sorted(ALLOWED.values()))
    reqs = ffi.new("uint32_t[]", list(ALLOWED_IOCTLS))
    err = lib.vl_sandbox(nrs, len(nrs), IOCTL, reqs, len(reqs), TGKILL, os.getpid())
    if err:
        raise KvmError(f"seccomp: could not install the filter: error {err}")
