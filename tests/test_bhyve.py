"""The bhyve backend, checked without FreeBSD (BHYVE_SPEC 11).

FreeBSD cannot run here. Everything below is pure data or logic: request
numbers, struct layouts, version selection, VM lifetime, the boot call list,
exit decoding, tap and kqueue logic. The kernel is replaced by a recording
host that writes each call down instead of issuing it; what only a real
FreeBSD can show (the kernel accepting these numbers, destroy-on-close on
process death) is listed in the README as unverified."""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import struct
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
from conftest import guest, tender_cmd

from tender import abi, layout
from tender.backend import BHYVE, KVM, Fatal, Hypercall, Kick, Retry, host_kind, no_hypervisor
from tender.bhyve import boot, exits, ioc, kick, lifecycle, structs, tap, waitset
from tender.bhyve.consts import Reg
from tender.bhyve.host import FreeBsdHost
from tender.bhyve.vm import BhyveBackend
from tender.errors import DeviceError


@dataclass
class Recorder:
    """A FreeBSD host that records calls. `fail` maps a request number (or a
    path, or a sysctl name) to the errnos its next calls raise, in order."""

    sysctls: dict[str, bytes] = field(default_factory=dict)
    fail: dict[object, list[int]] = field(default_factory=dict)
    calls: list[tuple[object, ...]] = field(default_factory=list)
    next_fd: int = 10
    exit_record: bytes = b""

    def _maybe_fail(self, key: object) -> None:
        errs = self.fail.get(key)
        if errs:
            e = errs.pop(0)
            raise OSError(e, os.strerror(e))

    def open(self, path: str, flags: int) -> int:
        self.calls.append(("open", path, flags))
        self._maybe_fail(path)
        self.next_fd += 1
        return self.next_fd

    def close(self, fd: int) -> None:
        self.calls.append(("close", fd))

    def ioctl(self, fd: int, request: int, arg: bytearray) -> None:
        self.calls.append(("ioctl", fd, request, bytes(arg)))
        self._maybe_fail(request)
        if request == ioc.VM_RUN_14 and self.exit_record:
            # The kernel copies the exit out to the pointer in vm_run.
            (ptr,) = struct.unpack_from("<Q", arg, 24)
            ctypes.memmove(ptr, self.exit_record, len(self.exit_record))

    def sysctl_write(self, name: str, value: bytes) -> None:
        self.calls.append(("sysctl_write", name, value))
        self._maybe_fail(name)

    def sysctl_read(self, name: str, size: int) -> bytes:
        self.calls.append(("sysctl_read", name, size))
        self._maybe_fail(name)
        return self.sysctls[name]

    def mmap_vm(self, fd: int, length: int) -> mmap.mmap:
        self.calls.append(("mmap", fd, length))
        return mmap.mmap(-1, length)

    def getpid(self) -> int:
        return 4242

    def ioctls(self) -> list[tuple[int, bytes]]:
        return [(c[2], c[3]) for c in self.calls if c[0] == "ioctl"]  # type: ignore[misc]


def freebsd(osreldate: int = 1403000, tsc: int = 2_893_402_117) -> Recorder:
    return Recorder(sysctls={
        "kern.osreldate": struct.pack("<i", osreldate),
        "machdep.tsc_freq": struct.pack("<Q", tsc),
        "kern.timecounter.invariant_tsc": struct.pack("<i", 1),
    })


# 1. Encoder --------------------------------------------------------------

SPEC_NUMBERS = {
    "VM_RUN_13": 0xC0907601, "VM_RUN_14": 0x80207601, "VM_SET_CAPABILITY": 0x80107602,
    "VM_GET_CAPABILITY": 0xC0107603, "VM_SUSPEND": 0x80047604, "VM_REINIT": 0x20007605,
    "VM_ALLOC_MEMSEG_14": 0x8020760E, "VM_ALLOC_MEMSEG_15": 0x8038760E,
    "VM_GET_MEMSEG_14": 0xC020760F, "VM_GET_MEMSEG_15": 0xC038760F,
    "VM_MMAP_MEMSEG": 0x80287610, "VM_MMAP_GETNEXT": 0xC0287611,
    "VM_MUNMAP_MEMSEG": 0x80107613, "VM_SET_REGISTER": 0x80107614,
    "VM_GET_REGISTER": 0xC0107615, "VM_SET_SEGMENT_DESCRIPTOR": 0x80187616,
    "VM_GET_SEGMENT_DESCRIPTOR": 0xC0187617, "VM_SET_REGISTER_SET": 0x80187618,
    "VM_GET_REGISTER_SET": 0xC0187619, "VM_RESTART_INSTRUCTION": 0x80047627,
    "VM_ACTIVATE_CPU": 0x8004765A, "VM_GET_CPUS": 0x8010765B, "VM_SUSPEND_CPU": 0x8004765C,
    "VM_RESUME_CPU": 0x8004765D, "VMMCTL_VM_CREATE": 0xC1285600,
    "VMMCTL_VM_DESTROY": 0xC1285601, "SIOCGIFMTU": 0xC0206933,
}


@pytest.mark.parametrize("name", sorted(SPEC_NUMBERS))
def test_request_numbers_match_the_spec_tables(name: str) -> None:
    assert getattr(ioc, name) == SPEC_NUMBERS[name], hex(getattr(ioc, name))


def test_encoder_refuses_sizes_the_field_cannot_hold() -> None:
    assert ioc.ioc(ioc.Dir.IN, "v", 1, 8191) == 0x80000000 | (8191 << 16) | 0x7601
    with pytest.raises(ValueError, match="8192 exceeds 8191"):
        ioc.ioc(ioc.Dir.IN, "v", 1, 8192)
    # FreeBSD's IN is Linux's write bit moved: never the Linux encoding.
    assert ioc.ioc(ioc.Dir.IN, "v", 20, 16) >> 29 == 0b100


# 2. Struct sizes and offsets ----------------------------------------------

def off(cls: type[ctypes.Structure], name: str) -> int:
    return int(getattr(cls, name).offset)


def test_struct_sizes_and_offsets_match_the_spec() -> None:
    s = structs
    assert ctypes.sizeof(s.VmRun) == 32 and off(s.VmRun, "vm_exit") == 24
    assert ctypes.sizeof(s.VmExitHead) == 136 and off(s.VmExitHead, "u") == 16
    assert (s.EXIT_INOUT_PORT, s.EXIT_INOUT_EAX) == (18, 20)
    assert (s.EXIT_VMX_STATUS, s.EXIT_VMX_REASON, s.EXIT_VMX_QUAL, s.EXIT_VMX_INST_TYPE,
            s.EXIT_VMX_INST_ERROR) == (16, 20, 24, 32, 36)
    assert s.VM_EXIT_BUFFER >= 256
    assert ctypes.sizeof(s.VmMemseg14) == 32 and ctypes.sizeof(s.VmMemseg15) == 56
    assert off(s.VmMemseg15, "ds_policy") == 48 and off(s.VmMemseg15, "name") == 16
    assert ctypes.sizeof(s.VmMemmap) == 40
    assert (off(s.VmMemmap, "segoff"), off(s.VmMemmap, "len"), off(s.VmMemmap, "prot"),
            off(s.VmMemmap, "flags")) == (16, 24, 32, 36)
    assert ctypes.sizeof(s.VmSegDesc) == 24 and off(s.VmSegDesc, "access") == 20
    assert ctypes.sizeof(s.VmCapability) == 16 and ctypes.sizeof(s.VmRegister) == 16
    assert off(s.VmRegister, "regval") == 8
    assert ctypes.sizeof(s.VmmctlCreate) == ctypes.sizeof(s.VmmctlDestroy) == 296
    assert off(s.VmmctlCreate, "flags") == 232 and off(s.VmmctlDestroy, "reserved") == 232
    assert ctypes.sizeof(s.IfreqMtu) == 32 and off(s.IfreqMtu, "ifr_mtu") == 16
    assert ctypes.sizeof(s.VmRun13) == 144 and off(s.VmRun13, "vm_exit") == 8
    # The spec's Python formats agree with the layouts.
    for fmt, cls in (("<iiii", s.VmCapability), ("<i4xQ16s", s.VmMemseg14),
                     ("<i4xQ16sQQi4x", s.VmMemseg15), ("<Qi4xqQii", s.VmMemmap),
                     ("<iiQ", s.VmRegister), ("<iiQII", s.VmSegDesc), ("<iIQQ", s.VmRegisterSet),
                     ("<i4xQQQ", s.VmRun), ("<230s2xI60s", s.VmmctlCreate),
                     ("<230s2x64s", s.VmmctlDestroy), ("<16si12x", s.IfreqMtu)):
        assert struct.calcsize(fmt) == ctypes.sizeof(cls), cls


# 3. Version selection -----------------------------------------------------

@pytest.mark.parametrize(("rel", "run", "memseg", "size"), [
    (1399999, 0xC0907601, 0x8020760E, 32),
    (1400000, 0x80207601, 0x8020760E, 32),
    (1403000, 0x80207601, 0x8020760E, 32),
    (1500000, 0x80207601, 0x8038760E, 56),
])
def test_version_selects_run_and_memseg_layouts(rel: int, run: int, memseg: int,
                                                size: int) -> None:
    a = ioc.abi_for(rel)
    assert (a.vm_run, a.alloc_memseg, a.memseg_size) == (run, memseg, size)


def test_enotty_from_the_56_byte_memseg_falls_back_to_32() -> None:
    host = freebsd(1500000)
    host.fail[ioc.VM_ALLOC_MEMSEG_15] = [errno.ENOTTY]
    BhyveBackend(host).open(8 << 20)
    reqs = [r for r, _ in host.ioctls()]
    assert reqs[2:4] == [ioc.VM_ALLOC_MEMSEG_15, ioc.VM_ALLOC_MEMSEG_14]
    assert len(host.ioctls()[2][1]) == 56
    seg = host.ioctls()[3][1]
    assert len(seg) == 32 and struct.unpack("<i4xQ16s", seg) == (0, 8 << 20, bytes(16))


# 4. Lifecycle -------------------------------------------------------------

def test_no_vmmctl_uses_the_sysctls_and_destroys_after_closing_the_vm_fd() -> None:
    host = freebsd()
    host.fail[lifecycle.VMMCTL] = [errno.ENOENT]
    vm = lifecycle.create(host, "solo5-4242")
    assert ("sysctl_write", "hw.vmm.create", b"solo5-4242") in host.calls  # no NUL
    assert vm.destroy is lifecycle.Destroy.SYSCTL
    vm.close()
    vm.close()  # idempotent
    tail = host.calls[-2:]
    assert tail == [("close", vm.fd), ("sysctl_write", "hw.vmm.destroy", b"solo5-4242")]


def test_read_only_vmmctl_is_one_clear_error() -> None:
    host = freebsd()
    host.fail[lifecycle.VMMCTL] = [errno.EACCES]
    with pytest.raises(lifecycle.BhyveError,
                       match=r"^no write access to /dev/vmmctl \(need root or group vmm\)$"):
        lifecycle.create(host, "solo5-1")


def test_destroy_on_close_accepted_means_no_explicit_destroy() -> None:
    host = freebsd()
    vm = lifecycle.create(host, "solo5-7")
    (create,) = [c for c in host.calls if c[0] == "ioctl"]
    name, flags, reserved = struct.unpack("<230s2xI60s", create[3])  # type: ignore[arg-type]
    assert create[2] == ioc.VMMCTL_VM_CREATE
    assert name.rstrip(b"\0") == b"solo5-7" and flags == 1 and reserved == bytes(60)
    assert ("open", lifecycle.VMMCTL, os.O_RDWR | os.O_CLOEXEC) in host.calls
    vm.close()
    # The VM fd first, then the vmmctl fd whose close destroys the VM; nothing else.
    assert host.calls[-2:] == [("close", vm.fd), ("close", 11)]
    assert not [c for c in host.calls if c[0] in ("sysctl_write",) or
                (c[0] == "ioctl" and c[2] == ioc.VMMCTL_VM_DESTROY)]


def test_flag_rejected_by_15_0_retries_without_it_and_destroys_at_exit() -> None:
    host = freebsd()
    host.fail[ioc.VMMCTL_VM_CREATE] = [errno.EINVAL]
    vm = lifecycle.create(host, "solo5-8")
    creates = [c[3] for c in host.calls if c[0] == "ioctl"]
    assert [struct.unpack_from("<I", c, 232)[0] for c in creates] == [1, 0]  # type: ignore[arg-type]
    assert creates[1][232:] == bytes(64)  # type: ignore[index]
    vm.close()
    close_vm, destroy, close_ctl = host.calls[-3:]
    assert close_vm == ("close", vm.fd)
    assert destroy[0] == "ioctl" and destroy[2] == ioc.VMMCTL_VM_DESTROY
    assert struct.unpack("<230s2x64s", destroy[3])[1] == bytes(64)  # type: ignore[arg-type]
    assert close_ctl == ("close", 11)


def test_existing_name_and_failed_open_leave_nothing_behind() -> None:
    host = freebsd()
    host.fail[ioc.VMMCTL_VM_CREATE] = [errno.EEXIST]
    with pytest.raises(lifecycle.BhyveError, match=r"^Cannot create VM 'solo5-9': File exists$"):
        lifecycle.create(host, "solo5-9")
    assert host.calls[-1] == ("close", 11)
    host = freebsd()
    host.fail["/dev/vmm/solo5-9"] = [errno.EACCES]
    with pytest.raises(lifecycle.BhyveError, match=r"^open\(/dev/vmm/solo5-9\): Permission"):
        lifecycle.create(host, "solo5-9")
    assert host.calls[-1] == ("close", 11)  # destroy-on-close: closing vmmctl is the destroy


def test_a_failure_after_create_destroys_the_vm() -> None:
    host = freebsd()
    host.fail[lifecycle.VMMCTL] = [errno.ENOENT]
    host.fail[ioc.VM_MMAP_MEMSEG] = [errno.ENOMEM]
    with pytest.raises(lifecycle.BhyveError, match=r"^VM_MMAP_MEMSEG: Cannot allocate memory$"):
        BhyveBackend(host).open(4 << 20)
    assert host.calls[-1] == ("sysctl_write", "hw.vmm.destroy", b"solo5-4242")


def test_name_length_limit() -> None:
    with pytest.raises(lifecycle.BhyveError, match="VM name too long"):
        lifecycle.create(freebsd(), "x" * 230)


# 5 and 6. Memory set-up and boot ioctl list -------------------------------

def test_boot_issues_spec_steps_5_to_20_in_order() -> None:
    host = freebsd()
    backend = BhyveBackend(host)
    mem = layout.mem_size(512 << 20, has_net=True)
    ram = backend.open(mem.alloc)
    assert len(ram) == mem.alloc
    entry = 0x100ABC
    backend.boot(layout.cpu_plan(entry, mem))
    got = host.ioctls()[1:]  # after VMMCTL_VM_CREATE
    assert len(got) == 29
    cap, memseg, memmap = got[:3]
    assert cap == (0x80107602, struct.pack("<iiii", 0, 0, 1, 0))
    assert memseg == (0x8020760E, struct.pack("<i4xQ16s", 0, mem.alloc, b""))
    assert memmap == (0x80287610, struct.pack("<Qi4xqQii", 0, 0, 0, mem.alloc, 7, 0))
    want: list[tuple[int, tuple[int, ...]]] = []

    def reg(r: Reg, v: int) -> None:
        want.append((0x80107614, (0, r, v)))

    def desc(r: Reg, base: int, limit: int, acc: int) -> None:
        want.append((0x80187616, (0, r, base, limit, acc)))

    reg(Reg.CR0, 0x80010021)
    reg(Reg.CR3, 0x2000)
    reg(Reg.CR4, 0x620)
    reg(Reg.EFER, 0x500)
    for r in (Reg.CS, Reg.SS, Reg.DS, Reg.ES, Reg.FS, Reg.GS):
        code = r is Reg.CS
        desc(r, 0, 0xFFFFFFFF, 0xA099 if code else 0xC093)
        reg(r, 0x08 if code else 0x10)
    desc(Reg.GDTR, 0x1000, 23, 0)
    desc(Reg.TR, 0, 0, 0x008B)
    reg(Reg.TR, 0)
    desc(Reg.LDTR, 0, 0, 0x10000)
    reg(Reg.LDTR, 0)
    reg(Reg.RIP, entry)
    reg(Reg.RFLAGS, 0x2)
    reg(Reg.RSP, mem.guest - 8)
    reg(Reg.RDI, 0x10000)
    decoded = []
    for request, payload in got[3:-1]:
        fmt = "<iiQ" if request == 0x80107614 else "<iiQII"
        decoded.append((request, struct.unpack(fmt, payload)))
    assert decoded == want
    assert got[-1] == (0x8004765A, struct.pack("<i", 0))
    # The host mapping is the full allocation of the VM fd.
    assert ("mmap", 11 + 1, mem.alloc) in host.calls


def test_real_host_maps_shared_read_write_never_exec() -> None:
    fd = os.memfd_create("bhyve-test")
    try:
        os.ftruncate(fd, 1 << 20)
        m = FreeBsdHost().mmap_vm(fd, 1 << 20)
        m[4096:4100] = b"hvt!"
        assert os.pread(fd, 4, 4096) == b"hvt!"  # MAP_SHARED, offset 0 = GPA 0
        addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
        with open("/proc/self/maps") as maps:
            line = next(ln for ln in maps if int(ln.split("-")[0], 16) == addr)
        assert line.split()[1] == "rw-s"
        m.close()
    finally:
        os.close(fd)


# 7. TSC -------------------------------------------------------------------

def test_tsc_hz_is_copied_exactly_and_must_be_invariant() -> None:
    host = freebsd(tsc=2_893_402_117)
    assert BhyveBackend(host).tsc_hz() == 2_893_402_117
    assert ("sysctl_read", "machdep.tsc_freq", 8) in host.calls
    host.sysctls["kern.timecounter.invariant_tsc"] = struct.pack("<i", 0)
    with pytest.raises(lifecycle.BhyveError, match=r"^Host TSC is not invariant, cannot continue$"):
        boot.tsc_hz(host)


# 8 and 9. Exits -----------------------------------------------------------

def exit_record(code: int, inst_length: int, rip: int, u: bytes = b"") -> bytes:
    return struct.pack("<iiQ", code, inst_length, rip) + u.ljust(120, b"\0")


def inout_record(port: int, word: int = 0x0004, eax: int = 0) -> bytes:
    return exit_record(0, 1, 0x100ABC, struct.pack("<HHI", word, port, eax))


def test_exit_decoding_vectors() -> None:
    spec = bytes.fromhex("00000000 01000000 bc0a100000000000 0400 0205 45230100".replace(" ", ""))
    assert exits.decode(spec.ljust(136, b"\0")) == Hypercall(abi.Hypercall.PUTS, 0x12345)
    assert exits.decode(inout_record(0x600)) == Kick()
    assert exits.decode(inout_record(0x600, 0x000C)) == Fatal(
        ("Invalid guest port access: port=0x600",))
    assert exits.decode(inout_record(0x509)) == Fatal(("Invalid guest port access: port=0x509",))
    assert exits.decode(inout_record(0x4FF)) == Fatal(("Invalid guest port access: port=0x4ff",))
    assert exits.decode(inout_record(0x502, 0x0002)) == Fatal(
        ("Invalid guest port access: port=0x502",))
    assert exits.decode(inout_record(0x500)) == Fatal(("Invalid guest hypercall: num=0",))
    assert exits.decode(inout_record(0x508, eax=0x7000)) == Hypercall(abi.Hypercall.HALT, 0x7000)
    assert exits.decode(inout_record(0x505), frozenset({1, 2, 8})) == Fatal(
        ("Invalid guest hypercall: num=5",))
    assert exits.decode(exit_record(2, 0, 0x1234)) == Retry()
    assert exits.decode(exit_record(14, 0, 0x100ABC, struct.pack("<i", 3))) == Fatal(
        ("unhandled exit: exitcode=14, rip=0x100abc",))
    vmx = exits.decode(exit_record(1, 3, 0x100ABC, struct.pack("<iIQii", -1, 48, 0x181, 2, 7)))
    assert vmx == Fatal(("unhandled VMX exit:", "\trip\t\t0x0000000000100abc",
                         "\tinst_length\t3", "\tstatus\t\t-1", "\texit_reason\t48",
                         "\tqualification\t0x0000000000000181", "\tinst_type\t2",
                         "\tinst_error\t7"))


@pytest.mark.parametrize("size", [1, 2, 4])
@pytest.mark.parametrize("is_in", [0, 1])
@pytest.mark.parametrize("string", [0, 1])
@pytest.mark.parametrize("rep", [0, 1])
def test_inout_bitfield_decode(size: int, is_in: int, string: int, rep: int) -> None:
    word = size | is_in << 3 | string << 4 | rep << 5
    assert exits.decode_inout_bits(word) == (size, bool(is_in), bool(string), bool(rep))
    io = exits.inout(inout_record(0x502, word, 9))
    assert (io.bytes, io.is_in, io.string, io.rep, io.port, io.eax) == (
        size, bool(is_in), bool(string), bool(rep), 0x502, 9)


def test_run_reads_the_exit_the_kernel_copied_out() -> None:
    host = freebsd()
    backend = BhyveBackend(host)
    backend.open(4 << 20)
    backend.boot(layout.cpu_plan(0x100000, layout.mem_size(4 << 20, False)))
    backend.handled = frozenset({abi.Hypercall.PUTS, abi.Hypercall.HALT})
    host.exit_record = inout_record(0x502, eax=0xBEEF)
    assert backend.run() == Hypercall(abi.Hypercall.PUTS, 0xBEEF)
    run = host.ioctls()[-1]
    assert run[0] == 0x80207601 and len(run[1]) == 32
    host.fail[0x80207601] = [errno.EINTR]
    assert backend.run() == Retry()
    host.fail[0x80207601] = [errno.EINVAL]
    with pytest.raises(lifecycle.BhyveError, match=r"^VM_RUN: Invalid argument$"):
        backend.run()
    backend.close()


# 10. Tap ------------------------------------------------------------------

def test_tap_attach_opens_dev_node_and_reads_mtu_with_freebsd_request() -> None:
    host = freebsd()
    real_ioctl = host.ioctl

    def answer_mtu(fd: int, request: int, arg: bytearray) -> None:
        real_ioctl(fd, request, arg)
        arg[16:20] = struct.pack("<i", 9000)

    host.ioctl = answer_mtu  # type: ignore[method-assign]
    t = tap.attach(host, "tap100", 3, names=lambda: {"lo0", "tap100"})
    assert t.mtu == 9000
    opened = [c for c in host.calls if c[0] == "open"]
    assert opened == [("open", "/dev/tap100", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)]
    (req,) = [c for c in host.calls if c[0] == "ioctl"]
    assert req[1:3] == (3, 0xC0206933) and req[3][:16] == b"tap100".ljust(16, b"\0")  # type: ignore[index]


def test_tap_attach_errors() -> None:
    host = freebsd()
    with pytest.raises(DeviceError, match=r"^Could not attach interface: tap0123456789abc: "
                       r"File name too long$"):
        tap.attach(host, "tap0123456789abc", 3, names=lambda: set())
    with pytest.raises(DeviceError, match=r"^Could not attach interface: tap9: No such file"):
        tap.attach(host, "tap9", 3, names=lambda: {"tap1"})
    # The existence check comes first: opening /dev/tap9 would create it.
    assert not [c for c in host.calls if c[0] == "open"]


# 11. kqueue ---------------------------------------------------------------

class FakeKqueue:
    def __init__(self, ready: list[int]) -> None:
        self.ready = ready
        self.calls: list[tuple[object, ...]] = []

    def control(self, changes: list[waitset.Change] | None, max_events: int,
                timeout: tuple[int, int] | None) -> list[waitset.Event]:
        self.calls.append((changes, max_events, timeout))
        if changes:
            return []
        return [waitset.Event(100 + u, u) for u in self.ready][:max_events]


def test_kqueue_poll_logic() -> None:
    assert waitset.split_timeout(1_500_000_001) == (1, 500_000_001)
    kq = FakeKqueue([0, 2])
    ws = waitset.WaitSet(kq, [(100, 0), (101, 1), (102, 2)])
    assert kq.calls[0][0] == [waitset.Change(100, -1, 1, 0), waitset.Change(101, -1, 1, 1),
                              waitset.Change(102, -1, 1, 2)]
    assert ws.poll(1_500_000_001) == (2, 0b101)
    assert kq.calls[-1] == (None, 3, (1, 500_000_001))
    empty = FakeKqueue([])
    assert waitset.WaitSet(empty, []).poll(0) == (0, 0)
    assert empty.calls[-1][1] == 1  # n = max(1, number of fds)


# 12. Ring kick ------------------------------------------------------------

def test_kicks_become_one_byte_pipe_writes_and_gate_the_ring() -> None:
    k = kick.open_kick()
    assert k is not None
    for _ in range(3):
        if exits.decode(inout_record(0x600)) == Kick():
            k.kick()
    assert k.drain() == 3
    blobs = dict(layout.boot_blobs(kernel_end=0x200000, mem=layout.mem_size(8 << 20, True),
                                   tsc_hz=1, manifest=b"", args=(), ring_active=k is not None))
    info = abi.BOOT_INFO.unpack(blobs[abi.BOOT_INFO_BASE])
    assert info[5] == abi.HVT_FEATURE_RING_IO
    k.close()


# Selection ----------------------------------------------------------------

def test_backend_is_chosen_by_platform_and_bhyve_is_never_imported_on_linux() -> None:
    assert host_kind("freebsd15") is BHYVE and host_kind("linux") is KVM
    code = ("import sys, tender.cli, tender.vm; "
            "print(any(m.startswith('tender.bhyve') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_no_hypervisor_line() -> None:
    assert no_hypervisor(lambda p: False) == (
        "no hypervisor: neither /dev/kvm (Linux KVM) nor /dev/vmm (FreeBSD vmm) exists on "
        "this host")
    assert no_hypervisor(lambda p: p == "/dev/vmm") is None


def test_cli_on_a_host_with_neither_hypervisor_says_so_in_one_line() -> None:
    """A private mount namespace hides /dev behind an empty tmpfs."""
    cmd = " ".join(tender_cmd(guest("hello")))
    r = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs none /dev && exec {cmd}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines() == [
        "pytender: Could not open: /dev/kvm: No such file or directory (no hypervisor: neither "
        "/dev/kvm (Linux KVM) nor /dev/vmm (FreeBSD vmm) exists on this host)"]
