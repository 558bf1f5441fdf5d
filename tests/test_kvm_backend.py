"""The KVM backend used as the core uses it: open, boot, run -> typed exits."""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator

import pytest
from conftest import guest, require_kvm

from tender import abi, elf, layout
from tender.config import VmConfig
from tender.errors import GuestFault, KvmError
from tender.exits import Fatal, GuestWrite, Hypercall, Retry
from tender.hypercalls import Context
from tender.memory import GuestMemory
from tender.modules import dispatch_table
from tender.native import native_view
from tender.vm import load_guest


@pytest.fixture
def booted() -> Iterator[tuple[object, GuestMemory]]:
    """hello.hvt loaded and booted on a fresh KvmBackend, Python handlers only."""
    require_kvm()
    from tender.kvm.backend import KvmBackend

    cfg = VmConfig(kernel=guest("hello"), args=(b"Hello_Solo5",))
    binary, notes, manifest = load_guest(cfg)
    size = layout.mem_size(cfg.mem, has_net=False)
    backend = KvmBackend()
    mem = GuestMemory(size.alloc, size.guest, backend.open(size.alloc))
    plan = elf.plan_load(binary, cfg.kernel, size.alloc)
    for seg in plan.segments:
        mem.load(seg.vaddr, binary[seg.offset : seg.offset + seg.filesz])
        mem.protect(seg.start, seg.end,
                    mmap.PROT_READ | (mmap.PROT_WRITE if seg.flags & 2 else 0))
    cpu = layout.cpu_plan(plan.entry, size)
    for gpa, blob in cpu.blobs:
        mem.load(gpa, blob)
    backend.boot(cpu)
    for gpa, blob in layout.boot_blobs(
        kernel_end=plan.kernel_end, mem=size, tsc_hz=backend.tsc_hz(),
        manifest=manifest.guest_copy(notes.manifest_payload), args=cfg.args,
        ring_active=False,
    ):
        mem.load(gpa, blob)
    try:
        yield backend, mem
    finally:
        backend.leave()
        mem.close()
        backend.close()
        binary.close()


def test_run_returns_typed_hypercalls_until_halt(booted: tuple[object, GuestMemory]) -> None:
    from tender.kvm.backend import KvmBackend

    backend, mem = booted
    assert isinstance(backend, KvmBackend)
    r, w = os.pipe()
    try:
        ctx = Context(mem=mem, console_fd=w)
        keep: list[object] = []
        view = native_view(mem, load_guest(VmConfig(kernel=guest("hello")))[2], ctx, keep)
        backend.enter(view, ())     # native_mask 0: every hypercall reaches Python
        table = dispatch_table(False, False)
        seen = []
        while True:
            ex = backend.run()
            if isinstance(ex, Retry):
                continue
            assert isinstance(ex, Hypercall), ex
            seen.append(ex.nr)
            if ex.nr == abi.Hypercall.HALT:
                break
            table[ex.nr](ctx, ex.gpa)
        os.close(w)
        w = -1
        out = os.read(r, 4096)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    assert b"SUCCESS" in out
    assert seen.count(abi.Hypercall.PUTS) >= 2 and seen[-1] == abi.Hypercall.HALT
    # native_mask 0: the C loop served nothing itself.
    assert [view.counts[nr] for nr in range(abi.HYPERCALL_MAX + 1)] == [0] * (abi.HYPERCALL_MAX + 1)


def test_exit_errors_are_typed_and_say_kvm(booted: tuple[object, GuestMemory]) -> None:
    from tender.kvm.backend import KvmBackend, KvmExit

    backend, _ = booted
    assert isinstance(backend, KvmBackend)
    bad_port = backend.exit_error(Fatal(("Invalid guest port access: port=0x1",)))
    assert isinstance(bad_port, GuestFault) and bad_port.message.endswith("port=0x1")
    fault = backend.exit_error(GuestWrite(None))
    assert isinstance(fault, GuestFault)
    assert fault.message.startswith("KVM: host/guest translation fault: rip=0x")
    # An MMIO write inside RAM is the same fault (kvm_pvm's read-only slots);
    # outside RAM, or any other exit, is KVM's error.
    assert isinstance(backend.exit_error(KvmExit(6, mmio_addr=0x1000, mmio_is_write=True)),
                      GuestFault)
    other = backend.exit_error(KvmExit(6, mmio_addr=1 << 40, mmio_is_write=True))
    assert isinstance(other, KvmError) and "exit_reason=0x6" in other.message
    internal = backend.exit_error(KvmExit(17, suberror=3))
    assert isinstance(internal, KvmError) and internal.message.endswith("suberror=0x3")
