"""The KVM half of the stats view (tender.backend.StatsView): KVM's binary
statistics of the VM and vCPU fds, and KVM's exit-reason names."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tender.kvm.binstats import KvmStatsFd
from tender.kvm.exit_names import exit_name

_EMPTY: Mapping[str, int] = MappingProxyType({})


class KvmStatsView:
    """Both stats fds, or neither: `unavailable` says why (the first reason)."""

    def __init__(self, fds: tuple[KvmStatsFd, KvmStatsFd] | None, why: str | None) -> None:
        self._fds = fds
        self.unavailable = why

    @classmethod
    def open(cls, vm_fd: int, vcpu_fd: int) -> KvmStatsView:
        got = [KvmStatsFd.open(fd) for fd in (vm_fd, vcpu_fd)]
        vm, vcpu = got
        if isinstance(vm, KvmStatsFd) and isinstance(vcpu, KvmStatsFd):
            return cls((vm, vcpu), None)
        for s in got:
            if isinstance(s, KvmStatsFd):
                s.close()
        why = next(s for s in got if isinstance(s, str))
        return cls(None, why)

    def read(self) -> tuple[Mapping[str, int], Mapping[str, int]]:
        if self._fds is None:
            return _EMPTY, _EMPTY
        vm, vcpu = self._fds
        return vm.read(), vcpu.read()

    def exit_name(self, reason: int, last: int) -> str:
        return exit_name(reason, last)

    def close(self) -> None:
        if self._fds is not None:
            for s in self._fds:
                s.close()
