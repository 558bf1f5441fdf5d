"""Errors that are not the hypervisor's are not KvmError, and the
backend-neutral code's messages do not name KVM's calls (issue 11 part 1).
Real KVM, real runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from conftest import ROOT, guest, require_kvm

from tender.errors import KvmError

# The limit is set once the run path is imported, so only the guest RAM
# mapping (2 GiB) can fail under it.
_TOO_LITTLE_ADDRESS_SPACE = """
import resource, sys
from tender.config import VmConfig
from tender.errors import TenderError
from tender.vm import Tender
import tender._vcpu, tender.host, tender.kvm.backend, tender.stats
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))
try:
    Tender(VmConfig(kernel=sys.argv[1], mem=2 << 30)).run()
except TenderError as exc:
    print(type(exc).__name__, exc.message)
"""


def test_guest_ram_that_cannot_be_mapped_is_a_host_error() -> None:
    """The anonymous mmap of guest RAM is the host's memory, not KVM's."""
    require_kvm()
    r = subprocess.run([sys.executable, "-c", _TOO_LITTLE_ADDRESS_SPACE, guest("hello")],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.stdout.splitlines() == ["HostError Error allocating guest memory"], r.stderr


def test_a_refused_ring_kick_warns_without_naming_kvm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kick port already has an ioeventfd, so KVM refuses the ring's
    (EEXIST): the warning carries the backend's own error, the ring is off."""
    require_kvm()
    from tender.devices.ring import NetRing
    from tender.kvm.backend import KvmBackend

    monkeypatch.setenv("PYTENDER_RING_MODE", "thread")   # inline mode registers nothing
    backend = KvmBackend()
    ram = backend.open(1 << 20)
    taken = os.eventfd(0, os.EFD_CLOEXEC)
    try:
        register = backend.ring_kick()
        if register is None:
            pytest.skip("this KVM has no ioeventfd: the ring is never offered")
        register(taken)
        warnings: list[str] = []
        ring = NetRing.start(register, None, 0, backend.native_part, signal.SIGUSR2,
                             warnings.append)
        assert ring is None
        assert warnings == ["the ring kick could not be registered (KVM: ioctl (IOEVENTFD) "
                            "failed: File exists), falling back to hypercalls"]
        with pytest.raises(KvmError):    # the refusal really was KVM's
            register(taken)
    finally:
        os.close(taken)
        ram.close()
        backend.close()
