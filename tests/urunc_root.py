"""A urunc-like monitor root (ORCHESTRATORS.md 1.3, 4): run as root,

    python urunc_root.py --root EMPTYDIR --pidfile F --uid U --gid G --rootfs DIR [--disk FILE] \
        -- TENDER ARGS...

builds, in a private mount namespace, a tmpfs root holding exactly what
urunc gives the monitor: the TENDER file at its own absolute path, /lib,
/lib64 and /usr/lib (read-only binds), a tmpfs /dev with null, urandom, kvm
and net/tun (mode o+rw, as urunc sets), a noexec tmpfs /tmp, /proc, plus the
container rootfs read-only at /rootfs and a block image read-write at
/data/disk.img. Then it forks into a new PID namespace; the child (PID 1)
mounts /proc, chroots, drops to U:G with no supplementary groups and execs
TENDER, as urunc's execMonitor does. With --tty (OCI process.terminal) fds
0-2 are a PTY slave that is the session's controlling terminal. The child's host pid goes to F; this
process waits and exits with the child's status (128+N for a signal).

Not urunc: a harness that reproduces its contract with the same kernel calls."""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import os
import stat
import sys
import termios

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(src: str | None, dst: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(_libc.mount(src and src.encode(), dst.encode(), fstype and fstype.encode(),
                       ctypes.c_ulong(flags), data.encode() or None), f"mount {dst}")


def bind(src: str, dst: str, readonly: bool) -> None:
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    elif not os.path.exists(dst):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        open(dst, "w").close()
    mount(src, dst, None, MS_BIND | MS_REC)
    if readonly:
        mount(None, dst, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def build(root: str, tender: str, rootfs: str, disk: str | None) -> None:
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", 0, "mode=755")
    for path in ("/lib", "/lib64", "/usr/lib"):
        bind(path, root + path, readonly=True)
    bind(tender, root + tender, readonly=True)
    bind(rootfs, root + "/rootfs", readonly=True)
    if disk is not None:
        bind(disk, root + "/data/disk.img", readonly=False)
    os.makedirs(root + "/dev")
    mount("tmpfs", root + "/dev", "tmpfs", MS_NOSUID, "mode=755")
    os.makedirs(root + "/dev/net")
    for dev in ("/dev/null", "/dev/urandom", "/dev/kvm", "/dev/net/tun"):
        os.mknod(root + dev, stat.S_IFCHR | 0o666, os.stat(dev).st_rdev)
        os.chmod(root + dev, 0o666)
    os.makedirs(root + "/tmp")
    mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64m")
    os.makedirs(root + "/proc")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True, help="an empty directory to mount the root on")
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("--uid", type=int, required=True)
    ap.add_argument("--gid", type=int, required=True)
    ap.add_argument("--rootfs", required=True)
    ap.add_argument("--disk")
    ap.add_argument("--tty", action="store_true",
                    help="process.terminal: fds 0-2 a PTY slave, the session's terminal")
    ap.add_argument("argv", nargs=argparse.REMAINDER)
    opts = ap.parse_args()
    argv = opts.argv[1:] if opts.argv[:1] == ["--"] else opts.argv
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID), "unshare")
    root = opts.root
    build(root, argv[0], opts.rootfs, opts.disk)
    master, slave = os.openpty() if opts.tty else (-1, -1)
    pid = os.fork()
    if pid == 0:
        try:
            if opts.tty:    # as urunc's reexec child: setsid, TIOCSCTTY, dup2
                os.close(master)
                os.setsid()
                fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
                for fd in (0, 1, 2):
                    os.dup2(slave, fd)
                os.close(slave)
            mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            os.chroot(root)
            os.chdir("/")
            os.setgroups([])
            os.setgid(opts.gid)
            os.setuid(opts.uid)
            os.execve(argv[0], argv, dict(os.environ))
        except OSError as exc:
            os.write(2, f"urunc_root: exec {argv[0]}: {exc}\n".encode())
        os._exit(127)
    with open(opts.pidfile + ".tmp", "w") as f:
        f.write(str(pid))
    os.rename(opts.pidfile + ".tmp", opts.pidfile)
    if opts.tty:    # the console socket's reader: copy the terminal to our stdout
        os.close(slave)
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:     # EIO: the last slave fd closed
                break
            if not data:
                break
            os.write(1, data)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main())
