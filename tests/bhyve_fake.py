"""A simulated FreeBSD vmm host for whole runs of real guest ELFs.

SIMULATED, NOT FreeBSD: nothing here has run on a FreeBSD kernel. The fake
answers the vmm ioctls the way BHYVE_SPEC.md says the kernel does (vmmctl
create with or without destroy-on-close, or the 14 sysctls; a memseg the
tender maps; VM_RUN copying a struct vm_exit out to the pointer in vm_run)
and records every call. There is no vCPU: each VM_RUN plays the next step
of a script, which may read and write guest memory the way the guest would
(find its string in the loaded image, fill in a hypercall struct, post a
net ring entry) before it returns the exit record the kernel would copy out.

Used in-process by tests/test_bhyve_run.py and, for the CLI entry, as the
`python -m`-less child of `cli_child` (its own process: exit code, fds 1/2)."""

from __future__ import annotations

import errno
import json
import mmap
import os
import struct
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from test_bhyve import Recorder, exit_record, freebsd, inout_record

from tender import abi
from tender.bhyve import ioc

# A step is one VM_RUN: the exit record to copy out, or an errno for the
# ioctl to fail with, or an exception the host raises (after the call is
# recorded).
StepResult = bytes | int | BaseException
Step = Callable[["FakeVmm"], StepResult]

LIFECYCLES = ("main", "15.0", "14")
NAMES = {getattr(ioc, n): n for n in dir(ioc) if n.isupper() and isinstance(getattr(ioc, n), int)
         and (n.startswith("VM") or n == "SIOCGIFMTU")}
NAMES[ioc.VM_RUN_14] = "VM_RUN"
NAMES[ioc.VM_ALLOC_MEMSEG_14] = "VM_ALLOC_MEMSEG"
RING_ENTRY = struct.Struct("<IIQIIQ")   # csrc/hvt_ring.h struct ring_entry
OP_NET_WRITE = 1
RING_NEEDS_KICK = 72
RING_ENTRIES = 128


@dataclass
class FakeVmm(Recorder):
    """`lifecycle`: which VM-creation interface the host has (BHYVE_SPEC 2.5):
    "main" (vmmctl, destroy-on-close), "15.0" (vmmctl, the flag refused with
    EINVAL) or "14" (no /dev/vmmctl: the root-only sysctls)."""

    script: list[Step] = field(default_factory=list)
    mem: mmap.mmap | None = None
    runs: int = 0
    fd_names: dict[int, str] = field(default_factory=dict)

    def open(self, path: str, flags: int) -> int:
        fd = super().open(path, flags)
        self.fd_names[fd] = "vmmctl" if path == "/dev/vmmctl" else "vm"
        return fd

    def ioctl(self, fd: int, request: int, arg: bytearray) -> None:
        if request == ioc.VM_RUN_14:
            self.runs += 1
            if not self.script:
                raise AssertionError(f"VM_RUN #{self.runs} ran past the end of the script")
            got = self.script.pop(0)(self)
            if isinstance(got, BaseException):
                self.calls.append(("ioctl", fd, request, bytes(arg)))
                raise got
            if isinstance(got, int):
                self.fail[request] = [got]
            else:
                self.exit_record = got
        super().ioctl(fd, request, arg)

    def mmap_vm(self, fd: int, length: int) -> mmap.mmap:
        self.mem = super().mmap_vm(fd, length)
        return self.mem

    # --- what the guest sees ------------------------------------------------
    def guest_mem(self) -> mmap.mmap:
        assert self.mem is not None, "VM_RUN before the memory was mapped"
        return self.mem

    def boot_info(self) -> tuple[int, ...]:
        m = self.guest_mem()
        return abi.BOOT_INFO.unpack(m[abi.BOOT_INFO_BASE:abi.BOOT_INFO_BASE + abi.BOOT_INFO_SIZE])

    def cmdline(self) -> bytes:
        m = self.guest_mem()
        gpa = self.boot_info()[3]
        return m[gpa:m.find(b"\0", gpa)]

    def scratch(self, offset: int = 0) -> int:
        """Guest RAM the image does not use: just below the stack top."""
        return self.boot_info()[0] - 0x10000 + offset

    # --- the ordered operations, by name ------------------------------------
    def operations(self) -> list[str]:
        out: list[str] = []
        for call in self.calls:
            kind = call[0]
            if kind == "open":
                out.append(f"open {call[1]}")
            elif kind == "close":
                out.append(f"close {self.fd_names.get(call[1], call[1])}")  # type: ignore[call-overload]
            elif kind == "ioctl":
                out.append(NAMES.get(call[2], hex(call[2])))  # type: ignore[call-overload]
            elif kind == "sysctl_write":
                out.append(f"sysctl {call[1]}")
            elif kind == "mmap":
                out.append("mmap")
        return out


def fake_host(lifecycle: str = "main", script: Sequence[Step] = ()) -> FakeVmm:
    base = freebsd()
    host = FakeVmm(sysctls=base.sysctls, script=list(script))
    if lifecycle == "15.0":
        host.fail[ioc.VMMCTL_VM_CREATE] = [errno.EINVAL]
    elif lifecycle == "14":
        host.fail["/dev/vmmctl"] = [errno.ENOENT]
    else:
        assert lifecycle == "main", lifecycle
    return host


# --- script steps: what a guest would do before each exit -------------------

def hypercall(nr: int, gpa: int) -> bytes:
    return inout_record(abi.HYPERCALL_PIO_BASE + nr, eax=gpa)


def puts(text: bytes) -> Step:
    """PUTS of `text` where the guest image holds it (its .rodata)."""
    def step(v: FakeVmm) -> StepResult:
        m = v.guest_mem()
        at = m.find(text, 0x100000)
        assert at > 0, f"{text!r} is not in the loaded image"
        arg = v.scratch()
        m[arg:arg + abi.PUTS.size] = abi.PUTS.pack(at, len(text))
        return hypercall(abi.Hypercall.PUTS, arg)
    return step


def halt(status: int) -> Step:
    def step(v: FakeVmm) -> StepResult:
        arg = v.scratch(0x100)
        v.guest_mem()[arg:arg + abi.HALT.size] = abi.HALT.pack(0, status)
        return hypercall(abi.Hypercall.HALT, arg)
    return step


def raw(record: StepResult) -> Step:
    return lambda _v: record


def bogus() -> Step:
    """VM_EXITCODE_BOGUS: the kernel returned for pending work (a signal)."""
    return raw(exit_record(2, 0, 0x100ABC))


def hello_checks_its_command_line() -> Step:
    """guests/hello: HALT 1 unless the command line is Hello_Solo5."""
    def step(v: FakeVmm) -> StepResult:
        if v.cmdline() != b"Hello_Solo5":
            return halt(1)(v)
        return puts(b"\n**** Hello, World ****\n\n")(v)
    return step


def hello() -> list[Step]:
    return [hello_checks_its_command_line(), bogus(), puts(b"SUCCESS\n"), halt(0)]


def ring_write(frame: bytes, handle: int = 1, wait_asleep: bool = True,
               gpa: int | None = None) -> Step:
    """Post one NET_WRITE entry in the net ring, then kick port 0x600, as a
    guest does once the host asked for kicks. `wait_asleep`: first wait
    until the I/O thread has asked for a kick and blocked, so the frame can
    only go out if the kick woke it."""
    def step(v: FakeVmm) -> StepResult:
        m = v.guest_mem()
        info = v.boot_info()
        assert info[5] & abi.HVT_FEATURE_RING_IO, "the ring was not offered"
        ring = info[7]
        if wait_asleep:
            deadline = time.monotonic() + 10
            while struct.unpack_from("<I", m, ring + RING_NEEDS_KICK)[0] != 1:
                assert time.monotonic() < deadline, "the I/O thread never asked for a kick"
                time.sleep(0.001)
            time.sleep(0.05)    # from asking to blocking in read(): a few instructions
        data = v.scratch(0x200) if gpa is None else gpa
        if gpa is None:
            m[data:data + len(frame)] = frame
        (tail,) = struct.unpack_from("<I", m, ring)
        slot = ring + RING_ENTRIES + (tail % 1024) * RING_ENTRY.size
        m[slot:slot + RING_ENTRY.size] = RING_ENTRY.pack(OP_NET_WRITE, handle, data,
                                                         len(frame), tail, 0)
        struct.pack_into("<I", m, ring, tail + 1)
        return inout_record(abi.RING_KICK_PORT)
    return step


def spin(marker: str) -> list[Step]:
    """A guest that never halts; `marker` appears once it runs."""
    def step(_v: FakeVmm) -> StepResult:
        if not os.path.exists(marker):
            with open(marker, "w"):
                pass
        time.sleep(0.002)
        return exit_record(2, 0, 0x100ABC)
    return [step] * 30_000


# name -> the script, given a path the script may create (spin's marker)
SCENARIOS: dict[str, Callable[[str], list[Step]]] = {
    "hello": lambda _m: hello(),
    "bad_port": lambda _m: [raw(inout_record(0x509))],
    "suspended": lambda _m: [raw(exit_record(14, 0, 0x100ABC, struct.pack("<i", 3)))],
    "run_fails": lambda _m: [bogus(), raw(errno.EINVAL)],
    "host_raises": lambda _m: [raw(RuntimeError("the fake host broke"))],
    "spin": spin,
}


def signal_once_running(cmd: list[str], marker: str, signum: int,
                        **popen: object) -> tuple[int, bytes, bytes]:
    """Start `cmd` (a spin scenario), send `signum` once the guest runs
    (`marker` exists): (returncode, stdout, stderr)."""
    import subprocess

    child = subprocess.Popen(cmd, stdout=subprocess.PIPE,  # type: ignore[call-overload]
                             stderr=subprocess.PIPE, **popen)
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(marker):
            assert child.poll() is None and time.monotonic() < deadline, "the guest never ran"
            time.sleep(0.01)
        child.send_signal(signum)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return child.returncode, out, err


def cli_child(lifecycle: str, scenario: str, ops_path: str, argv: list[str]) -> int:
    """The CLI entry (tender.cli.run_hvt) on a simulated FreeBSD 14: the
    platform check and the host's calls are the only things replaced."""
    import tender.bhyve.vm as bhyve_vm
    from tender.cli import run_hvt

    host = fake_host(lifecycle, SCENARIOS[scenario](ops_path + ".running"))
    bhyve_vm.FreeBsdHost = lambda: host  # type: ignore[assignment,misc,return-value]
    sys.platform = "freebsd14"
    try:
        return run_hvt("pytender", argv)
    finally:
        with open(ops_path, "w") as f:
            json.dump(host.operations(), f)


if __name__ == "__main__":
    status = cli_child(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
    sys.stdout.flush()
    os._exit(status & 0xFF)
