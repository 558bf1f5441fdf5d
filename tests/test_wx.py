"""Issue 9 part 1: W^X on Linux/KVM. Each way of breaking it, on real KVM,
with --wx=on (default) in both handler modes and with --wx=off."""

from __future__ import annotations

import re

import pytest
from conftest import guest, run_tender

from tender import wx
from tender.layout import WxMap

pytestmark = pytest.mark.usefixtures("kvm")

MEM = "--mem=64"
FAULT = "pytender: KVM: host/guest translation fault: rip=0x"
NOT_STOPPED = 3
# mode -> (status with --wx=on, with --wx=off); 1 = the translation fault line
CASES = {
    "xrodata": (1, NOT_STOPPED),
    "xdata": (1, NOT_STOPPED),
    "xstack": (1, NOT_STOPPED),
    "xheap": (1, NOT_STOPPED),
    "wtext": (1, 1),
    "wrodata": (1, 1),
    "wbootinfo": (1, 255),      # read-only in spec 3.3 too: the guest's own #PF then
    "wpwp": (1, 1),             # CR0.WP cleared: the host mapping still refuses
    "wpt": (1, NOT_STOPPED),    # own CR3: only the read-only memslot stops it
    "wgdt": (1, NOT_STOPPED),
    "nxe": (255, 255),          # the MSR filter refuses the EFER write: #GP
    "rdtext": (0, 0),           # x86 has no execute-only pages
}


def check(r, mode: str, status: int) -> None:  # type: ignore[no-untyped-def]
    assert r.status == status, r.output
    assert "Traceback" not in r.output
    if status == 1:
        last = r.err.splitlines()[-1]
        assert last.startswith(FAULT), r.err
        called = re.search(r"calling code in .* at (0x[0-9a-f]+)", r.out)
        if called:      # an NX fetch faults on the first byte it fetches
            assert last == FAULT[:-2] + called[1], r.output
    elif status == NOT_STOPPED:
        assert f"wx: NOT STOPPED: {mode}" in r.out and r.err == "", r.output
    elif status == 255 and mode == "nxe":
        assert "GUEST: trap: #GP" in r.out and "wx: EFER=" not in r.out, r.out
    elif status == 255:
        assert "GUEST: trap: #PF" in r.out and "ec=0x3 " in r.out, r.out
        assert "translation fault" not in r.err
    else:
        assert "victim(1) = 4" in r.out and r.err == "", r.output


@pytest.mark.parametrize("mode", CASES)
def test_wx_on(mode: str, handlers: str) -> None:
    check(run_tender(MEM, handlers, guest("wx"), mode), mode, CASES[mode][0])


@pytest.mark.parametrize("mode", CASES)
def test_wx_off(mode: str) -> None:
    check(run_tender(MEM, "--wx=off", guest("wx"), mode), mode, CASES[mode][1])


def test_wx_library_api() -> None:
    """VmConfig(wx=...) as a library user sets it."""
    from tender import TenderError, VmConfig, run

    with pytest.raises(TenderError, match="host/guest translation fault"):
        run(VmConfig(kernel=guest("wx"), args=(b"xdata",), mem=64 << 20))
    out = run(VmConfig(kernel=guest("wx"), args=(b"rdtext",), mem=64 << 20, wx=False))
    assert out.status == 0


def test_existing_guests_unchanged_by_wx() -> None:
    """TLS, stack protector, exceptions and the zero page keep their results."""
    assert run_tender(MEM, guest("tls")).status == 0
    for name in ("exception", "zeropage", "ssp", "notls"):
        r = run_tender(MEM, guest(name))
        assert r.status == 255 and "translation fault" not in r.err, (name, r.output)


def test_classify_abort_pure() -> None:
    frame = (0x105000, 0x11, 0x105000, 8, 2, 0x3ff000, 0x10)
    prot = ((0x101000, 0x102000), wx.LOW_MEMORY)
    assert wx.classify_abort(255, frame, prot) == "KVM: host/guest translation fault: rip=0x105000"
    assert wx.classify_abort(1, frame, prot) is None                        # not an abort
    assert wx.classify_abort(255, None, prot) is None
    assert wx.classify_abort(255, (0x105000, 0x10, 0x105000), prot) is None  # not present
    assert wx.classify_abort(255, (0x105000, 0x19, 0x105000), prot) is None  # reserved bit
    assert wx.classify_abort(255, (0x105000, 0x11, 0x104000), prot) is None  # cr2 not at rip
    w = (0x101008, 0x3, 0x100abc)
    assert wx.classify_abort(255, w, prot) == "KVM: host/guest translation fault: rip=0x100abc"
    assert wx.classify_abort(255, (0x200000, 0x3, 0x100abc), prot) is None  # not protected
    assert wx.classify_abort(255, (0x8, 0x2, 0x100abc), prot) is None       # zero page


def test_wx_map_from_segments() -> None:
    from tender.elf import Segment

    segs = (Segment(1, 0x100000, 0, 1, 1, 5, 0x100000, 0x102000),
            Segment(2, 0x102000, 0, 1, 1, 4, 0x102000, 0x103000),
            Segment(3, 0x103000, 0, 1, 1, 6, 0x103000, 0x104000))
    assert wx.wx_map(segs) == WxMap(text=((0x100000, 0x102000),),
                                    read_only=((0x102000, 0x103000),))


def test_argv_protection_options() -> None:
    from tender.argv import pass1, pass2
    from tender.config import CpuidMode
    from tender.errors import UsageError
    from tender.manifest import Manifest, reserved_entry

    mft = Manifest((reserved_entry(),))
    c = pass2(pass1(["k"]), mft)
    assert (c.wx, c.cpuid, c.msr_filter) == (True, CpuidMode.FILTERED, True)
    c = pass2(pass1(["--wx=off", "--cpuid=host", "--msr=host", "k"]), mft)
    assert (c.wx, c.cpuid, c.msr_filter) == (False, CpuidMode.HOST, False)
    for bad in ("--wx=maybe", "--cpuid=none", "--msr=off"):
        with pytest.raises(UsageError, match="Invalid option"):
            pass2(pass1([bad, "k"]), mft)


@pytest.mark.parametrize("mode", ["wpt", "wgdt"])
def test_low_memory_without_readonly_memslots(mode: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Where KVM lacks KVM_CAP_READONLY_MEM the low memory is mprotect-ed
    instead (hardware KVM: EFAULT; kvm_pvm: MMIO write): the same line."""
    from tender import TenderError, VmConfig, run
    from tender.kvm import ioctls as k
    from tender.kvm.vmfd import VmFd

    real = VmFd.check_extension
    monkeypatch.setattr(VmFd, "check_extension", lambda self, cap: 0 if cap == k.CAP_READONLY_MEM
                        else real(self, cap))
    with pytest.raises(TenderError, match=r"^KVM: host/guest translation fault: rip=0x"):
        run(VmConfig(kernel=guest("wx"), args=(mode.encode(),), mem=64 << 20))


def test_readme_wx_snippet_runs(capfd: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's W^X snippet, verbatim, from the repository root."""
    from conftest import ROOT

    section = (ROOT / "README.md").read_text().split("## W^X, CPUID and MSRs", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(ROOT)
    exec(compile(code, "README.md", "exec"), {})
    out = capfd.readouterr().out
    assert re.search(r"^KVM: host/guest translation fault: rip=0x[0-9a-f]+$", out, re.M), out
    assert out.rstrip().endswith("\n3"), out
