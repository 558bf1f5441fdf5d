"""Find out what KVM_SET_GUEST_DEBUG really does on this host.

KVM may accept the flags and still not deliver the exits (kvm_pvm takes
data watchpoints without ever firing them, and cannot run `int3` at all).
So before the guest's first instruction we run four tiny experiments on
the real vCPU, on a scratch page near the top of guest RAM, and then put
back every register and byte we touched.

    S+0  nop                  single step -> KVM_EXIT_DEBUG at S+1 ?
    S+1  mov %rax, (%rbx)     write watchpoint on [rbx] -> exit at S+4 ?
    S+4  int3                 hw exec breakpoint here -> exit at S+4 ?
                              USE_SW_BP: KVM_EXIT_DEBUG #BP, or an
                              emulation-failure internal error (kvm_pvm) ?
    S+5  out %al, $0xff       any experiment that fails ends here
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from tender.abi import PAGE_SIZE
from tender.debugview import DebugArm, DebugCaps
from tender.errors import TenderError
from tender.kvm import ioctls as k
from tender.kvm.debug import DEBUG_EXIT, RUN_EXIT_UNION, guest_debug
from tender.kvm.vcpu import VcpuFd
from tender.memory import GuestMemory

CODE = bytes((0x90, 0x48, 0x89, 0x03, 0xCC, 0xE6, 0xFF))
HOST = "KVM"
UNKNOWN = DebugCaps(HOST, False, False, False, "none")


@dataclass(frozen=True)
class _Result:
    kvm_reason: int
    rip: int
    exception: int
    dr6: int
    suberror: int


class _Runner:
    def __init__(self, vcpu: VcpuFd, mem: GuestMemory, scratch: int) -> None:
        from tender._vcpu import ffi

        self.vcpu, self.mem, self.s = vcpu, mem, scratch
        self.v = ffi.new("struct vl_vcpu *")
        self.v.backend = vcpu.native_part
        self.v.mem = ffi.cast("uint8_t *", mem.host_address)
        self.v.mem_size = mem.size
        self.e = ffi.new("struct vl_exit *")

    def once(self, rip: int, control: int, dr: dict[int, int]) -> _Result:
        from tender._vcpu import lib

        regs = self.vcpu.get_regs()
        regs.rip, regs.rbx, regs.rax = rip, self.s + 0x800, 0x5A
        self.vcpu.set_regs(regs)
        dbg = k.GuestDebug()
        dbg.control = control
        for i, val in dr.items():
            dbg.debugreg[i] = val
        self.vcpu.set_guest_debug(dbg)
        lib.vl_run(self.v, self.e)
        exc, _, _, dr6, _ = DEBUG_EXIT.unpack_from(self.vcpu.run_area, RUN_EXIT_UNION)
        x = self.v.backend.exit         # the KVM detail of a VL_EXIT
        return _Result(int(x.reason) if self.e.reason == lib.VL_EXIT else -1,
                       int(self.vcpu.get_regs().rip), exc, dr6, int(x.suberror))

    def close(self) -> None:
        """Nothing to release: the vCPU owns its native part."""


# Three page-table pages below the scratch page: the experiments run on a
# private identity map of the scratch page's 2 MiB region, RWX, because the
# guest's own W^X tables (issue 9) map it NX. The saved sregs restore CR3.
TABLE_PAGES = 3


def _private_tables(s: int) -> bytes:
    """PML4, PDPT, PD at s - 3, s - 2, s - 1 pages mapping s's 2 MiB region."""
    t = s - TABLE_PAGES * PAGE_SIZE
    pml4 = bytearray(PAGE_SIZE)
    pdpt = bytearray(PAGE_SIZE)
    pd = bytearray(PAGE_SIZE)
    struct.pack_into("<Q", pml4, 8 * ((s >> 39) & 511), (t + PAGE_SIZE) | 0x23)
    struct.pack_into("<Q", pdpt, 8 * ((s >> 30) & 511), (t + 2 * PAGE_SIZE) | 0x23)
    struct.pack_into("<Q", pd, 8 * ((s >> 21) & 511), (s & ~0x1FFFFF) | 0xE3)   # P RW A D PS
    return bytes(pml4 + pdpt + pd)


def _scratch_page(mem: GuestMemory) -> int | None:
    """A page near the top of RAM that the tender may write (not a read-only
    ELF segment, whose host pages would fault), with room for the private
    tables below it: zero at boot, as the guest's stack has not run yet."""
    s = mem.size - 4 * PAGE_SIZE
    while s - TABLE_PAGES * PAGE_SIZE >= mem.write_floor:
        try:
            mem.check_write(s - TABLE_PAGES * PAGE_SIZE, (TABLE_PAGES + 1) * PAGE_SIZE)
            return s
        except TenderError:
            s -= PAGE_SIZE
    return None


def probe(vcpu: VcpuFd, mem: GuestMemory) -> DebugCaps:
    """Run the experiments; any failure means "not available", never an error."""
    s = _scratch_page(mem)
    if s is None:
        return UNKNOWN
    low = s - TABLE_PAGES * PAGE_SIZE
    saved_mem = bytes(mem.view[low : s + PAGE_SIZE])
    saved_regs, saved_sregs = vcpu.get_regs(), vcpu.get_sregs()
    runner = None
    try:
        mem.view[low:s] = _private_tables(s)
        mem.view[s : s + len(CODE)] = CODE
        sregs = vcpu.get_sregs()
        sregs.cr3 = low
        vcpu.set_sregs(sregs)
        runner = _Runner(vcpu, mem, s)
        en = k.GUESTDBG_ENABLE
        r = runner.once(s, en | k.GUESTDBG_SINGLESTEP, {})
        step = r.kvm_reason == k.EXIT_DEBUG and r.rip == s + 1
        dr7_watch = 0x1 | (0b01 << 16) | (0b11 << 18)         # DR0: 4-byte write
        r = runner.once(s + 1, en | k.GUESTDBG_USE_HW_BP, {0: s + 0x800, 7: dr7_watch})
        watch = r.kvm_reason == k.EXIT_DEBUG and bool(r.dr6 & 1)
        r = runner.once(s + 4, en | k.GUESTDBG_USE_HW_BP, {0: s + 4, 7: 0x1})
        hw = r.kvm_reason == k.EXIT_DEBUG and r.rip == s + 4 and bool(r.dr6 & 1)
        r = runner.once(s + 4, en | k.GUESTDBG_USE_SW_BP, {})
        if r.kvm_reason == k.EXIT_DEBUG and r.exception == 3:
            int3 = "debug-exit"
        elif (r.kvm_reason == k.EXIT_INTERNAL_ERROR
              and r.suberror == k.INTERNAL_ERROR_EMULATION and r.rip == s + 4):
            int3 = "emulation-failure"
        else:
            int3 = "none"
        return DebugCaps(HOST, step, hw, watch, int3)
    except TenderError:
        return UNKNOWN
    finally:
        if runner is not None:
            runner.close()
        vcpu.set_guest_debug(guest_debug(DebugArm()))
        vcpu.set_sregs(saved_sregs)
        vcpu.set_regs(saved_regs)
        mem.view[low : s + PAGE_SIZE] = saved_mem
