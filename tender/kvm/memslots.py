"""Guest RAM memslots: one RAM slot, or (W^X) the tender's low memory in a
read-only slot of its own below it."""

from __future__ import annotations

from tender.kvm import ioctls as k
from tender.kvm.vmfd import VmFd


def map_ram(vm: VmFd, base: int, alloc: int, read_only_below: int = 0) -> bool:
    """Map [0, alloc) (host address `base`) into the guest. With
    `read_only_below`, [0, that) goes into a KVM_MEM_READONLY slot when the
    host has KVM_CAP_READONLY_MEM: a guest write there (through its own CR3,
    say) then exits as MMIO. Returns whether that slot exists; if not, the
    core mprotects the range once it has written it, and hardware KVM fails
    KVM_RUN with EFAULT instead. The host mapping stays writable for the
    tender either way."""
    vm.require_user_memory()
    if read_only_below and vm.check_extension(k.CAP_READONLY_MEM) > 0:
        vm.set_user_memory_region(0, 0, read_only_below, base, k.MEM_READONLY)
        vm.set_user_memory_region(1, read_only_below, alloc - read_only_below,
                                  base + read_only_below)
        return True
    vm.set_user_memory_region(0, 0, alloc, base)
    return False
