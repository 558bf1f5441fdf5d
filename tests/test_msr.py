"""Issue 9 part 3: MSRs are denied by default. A refused RDMSR/WRMSR gives
the guest #GP (its abort), is counted, and shows in the trace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import guest, run_tender

from tender.kvm import ioctls as k
from tender.kvm import msr

MEM = "--mem=64"
FS_BASE = "0xc0000100"


def refused(r) -> None:  # type: ignore[no-untyped-def]
    assert r.status == 255, r.output
    assert "GUEST: trap: #GP (vec 13)" in r.out and "cpu: msr " not in r.out, r.out
    assert "Traceback" not in r.output


@pytest.mark.usefixtures("kvm")
@pytest.mark.parametrize("index", ["0x4b564d01", "0x4b564d00", "0x12", "0x10"])
def test_kvmclock_and_tsc_reads_are_refused(index: str, handlers: str) -> None:
    refused(run_tender(MEM, handlers, guest("cpu"), "rdmsr", index))


@pytest.mark.usefixtures("kvm")
def test_efer_write_is_refused_and_traced(tmp_path: Path) -> None:
    t = tmp_path / "t.jsonl"
    r = run_tender(MEM, f"--trace={t}", guest("wx"), "nxe")
    assert r.status == 255 and "GUEST: trap: #GP" in r.out, r.output
    recs = [json.loads(line) for line in t.read_text().splitlines()]
    msrs = [x for x in recs if x.get("msr")]
    assert msrs == [{**msrs[0], "event": "vmexit", "kvm_reason": k.EXIT_X86_WRMSR,
                     "msr": "0xc0000080", "access": "write", "refused": True,
                     "data": "0x500"}]


@pytest.mark.usefixtures("kvm")
def test_fs_base_is_allowed(handlers: str, tmp_path: Path) -> None:
    r = run_tender(MEM, handlers, guest("cpu"), "wrmsr", FS_BASE)
    assert r.status == 0 and "cpu: msr 0xc0000100 = 0x" in r.out, r.output
    t = tmp_path / "t.jsonl"
    assert run_tender(MEM, f"--trace={t}", guest("tls")).status == 0
    assert '"msr"' not in t.read_text()


@pytest.mark.usefixtures("kvm")
def test_msr_host_leaves_msrs_to_kvm() -> None:
    r = run_tender(MEM, "--msr=host", guest("cpu"), "rdmsr", "0x10")
    assert r.status == 0 and "cpu: msr 0x10 = 0x" in r.out, r.output


@pytest.mark.usefixtures("kvm")
def test_outcome_counts_refused_msrs() -> None:
    from tender import VmConfig, run

    out = run(VmConfig(kernel=guest("cpu"), args=(b"rdmsr", b"0x10"), mem=64 << 20))
    assert out.aborted and out.msr_denied == 1
    assert run(VmConfig(kernel=guest("tls"), mem=64 << 20)).msr_denied == 0


def test_filter_ranges_pure() -> None:
    rs = msr.ranges()
    assert [(r.flags, r.base, r.bitmap) for r in rs] == [(3, 0xC0000100, b"\x01")]
    ro = msr.ranges((msr.Allowed(0x10, True, False, "test"),))
    assert [(r.flags, r.base) for r in ro] == [(k.MSR_FILTER_READ, 0x10)]
    assert [(r.flags, r.bitmap) for r in msr.ranges(())] == [(3, b"\x00")]   # deny all


class _OldKvm:
    """A VM fd of a host without the MSR filter: the detection path (this
    host has the capability, so it cannot be run for real)."""

    def __init__(self, caps: dict[int, int]) -> None:
        self.caps = caps
        self.calls: list[str] = []

    def check_extension(self, cap: int) -> int:
        return self.caps.get(cap, 0)

    def enable_cap(self, *_: Any) -> None:
        self.calls.append("enable_cap")

    def set_msr_filter(self, _: Any) -> None:
        self.calls.append("set_msr_filter")


def test_missing_capability_warns_and_continues() -> None:
    old = _OldKvm({k.CAP_X86_USER_SPACE_MSR: 1})
    w = msr.install(old)  # type: ignore[arg-type]
    assert w == ("warning: host KVM lacks KVM_CAP_X86_MSR_FILTER: "
                 "guest MSR accesses are not filtered") and old.calls == []
    assert "KVM_CAP_X86_USER_SPACE_MSR" in (msr.install(_OldKvm({})) or "")  # type: ignore[arg-type]
