"""Guest RAM memslots: one RAM slot, or (W^X) the tender's low memory in a
read-only slot of its own below it."""

from __future__ import annotations

import mmap

from tender.kvm import ioctls as k
from tender.kvm.vmfd import VmFd
from tender.memory import GuestMemory


def map_ram(vm: VmFd, mem: GuestMemory, read_only_below: int = 0) -> bool:
    """Map [0, alloc) into the guest. With `read_only_below`, [0, that) goes
    into a KVM_MEM_READONLY slot when the host has KVM_CAP_READONLY_MEM: a
    guest write there (through its own CR3, say) then exits as MMIO. Returns
    whether that slot exists; if not, the caller mprotects the range once it
    has written it (protect_low), and hardware KVM fails KVM_RUN with EFAULT
    instead. The host mapping stays writable for the tender either way."""
    vm.require_user_memory()
    base = mem.host_address
    if read_only_below and vm.check_extension(k.CAP_READONLY_MEM) > 0:
        vm.set_user_memory_region(0, 0, read_only_below, base, k.MEM_READONLY)
        vm.set_user_memory_region(1, read_only_below, mem.alloc_size - read_only_below,
                                  base + read_only_below)
        return True
    vm.set_user_memory_region(0, 0, mem.alloc_size, base)
    return False


def protect_low(mem: GuestMemory, end: int) -> None:
    """Fallback for hosts without read-only memslots: host-read-only pages."""
    mem.protect(0, end, mmap.PROT_READ)
