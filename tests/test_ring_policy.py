"""`--net-ring=auto` (issue 10): the ring is offered unless the host is
detected to be a software KVM (kvm_pvm), where spec 5.3's guest-side copy
and bookkeeping cost more than the exits the ring saves (bench/README.md).
The detection is a pure function of /proc/cpuinfo flags and /sys/module."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from conftest import guest, require_kvm, run_tender
from test_net_pipe import GUEST0, echoes, run_piped

from tender import Tender, VmConfig
from tender.config import NetSpec
from tender.devices import FramePipe
from tender.host import ring_pays
from tender.kvm.assist import Assist, classify, cpu_flags, probe

F = frozenset


@pytest.mark.parametrize(("flags", "modules", "want"), [
    (F({"fpu", "vmx"}), F({"kvm", "kvm_intel"}), Assist.HARDWARE),
    (F({"svm"}), F({"kvm", "kvm_amd"}), Assist.HARDWARE),
    (F({"fpu", "hypervisor"}), F({"kvm", "kvm_pvm"}), Assist.SOFTWARE),
    (F({"vmx"}), F({"kvm", "kvm_pvm"}), Assist.SOFTWARE),       # pvm chosen on a VT-x CPU
    (F({"fpu"}), F({"kvm"}), Assist.SOFTWARE),                 # a KVM without extensions
    (F({"vmx"}), F({"kvm", "kvm_intel", "kvm_pvm"}), Assist.UNKNOWN),
    (F({"vmx"}), F({"kvm"}), Assist.UNKNOWN),                  # vendor module not seen
    (F({"fpu"}), F({"kvm_intel"}), Assist.UNKNOWN),            # inconsistent
    (F(), F(), Assist.UNKNOWN),
])
def test_classify(flags: frozenset[str], modules: frozenset[str], want: Assist) -> None:
    assert classify(flags, modules) is want


def test_cpu_flags_reads_the_first_flags_line() -> None:
    text = ("processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme vmx sse2\n"
            "bugs\t\t: spectre_v1\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags(text) == F({"fpu", "vme", "vmx", "sse2"})
    assert cpu_flags("processor : 0\n") == F()


def _fake_host(root: Path, flags: str, modules: tuple[str, ...]) -> tuple[str, str]:
    (root / "proc").mkdir(parents=True)
    (root / "proc" / "cpuinfo").write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    for m in modules:
        (root / "sys" / "module" / m).mkdir(parents=True)
    return str(root / "proc"), str(root / "sys" / "module")


def test_probe_reads_the_files(tmp_path: Path) -> None:
    assert probe(*_fake_host(tmp_path / "a", "fpu vmx", ("kvm", "kvm_intel"))) is Assist.HARDWARE
    assert probe(*_fake_host(tmp_path / "b", "fpu", ("kvm", "kvm_pvm"))) is Assist.SOFTWARE
    assert probe(str(tmp_path / "none"), str(tmp_path / "none")) is Assist.UNKNOWN


def test_probe_on_this_host_matches_its_kvm_module() -> None:
    """The real files: a host with kvm_pvm loaded (and no vendor module) is
    SOFTWARE, one with kvm_intel/kvm_amd and VMX/SVM is HARDWARE."""
    require_kvm()
    mods = set(os.listdir("/sys/module"))
    flags = cpu_flags(Path("/proc/cpuinfo").read_text())
    if "kvm_pvm" in mods and not mods & {"kvm_intel", "kvm_amd"}:
        assert probe() is Assist.SOFTWARE
        assert not ring_pays()
    elif mods & {"kvm_intel", "kvm_amd"} and flags & {"vmx", "svm"} and "kvm_pvm" not in mods:
        assert probe() is Assist.HARDWARE
        assert ring_pays()
    else:
        assert probe() is Assist.UNKNOWN
        assert ring_pays()


def _ring_line(active: bool) -> str:
    return "NET: ring active\n" if active else "NET: ring inactive\n"


@pytest.mark.parametrize("offer", ["auto", "on", "off"])
def test_net_ring_option(offer: str) -> None:
    """auto follows the detection; on and off stay explicit on every host."""
    require_kvm()
    want = {"auto": ring_pays(), "on": True, "off": False}[offer]
    r = run_piped("--handlers=native", f"--net-ring={offer}", "--net={pipe0}", guest("net"),
                  GUEST0, "limit", "50", exchange=lambda p: echoes(p[0], GUEST0, 50))
    assert r.status == 0, r.output
    assert _ring_line(want) in r.out, r.out
    assert "NET: service0 answered 50 echo requests\nSUCCESS\n" in r.out


def test_auto_from_the_library(tmp_path: Path) -> None:
    """`VmConfig(net_ring="auto")`, as a user would write it."""
    require_kvm()
    pipe = FramePipe()
    console = tmp_path / "console"
    fd = os.open(console, os.O_WRONLY | os.O_CREAT)
    t = Tender(VmConfig(kernel=guest("net"), args=(b"10.0.0.2", b"limit", b"20"), mem=32 << 20,
                        net_ring="auto", nets=(NetSpec("service0", pipe=pipe),)),
               console_fd=fd)
    out: list[int] = []
    th = threading.Thread(target=lambda: out.append(t.run().status))
    th.start()
    try:
        echoes(pipe, "10.0.0.2", 20)
    finally:
        th.join(60)
        pipe.close()
        os.close(fd)
    assert out == [0], console.read_text()
    assert _ring_line(ring_pays()) in console.read_text()


def test_bad_net_ring_value_is_one_line() -> None:
    r = run_tender("--net-ring=maybe", guest("hello"))
    assert r.status == 1
    assert r.err.splitlines()[0] == "pytender: Invalid option: `--net-ring=maybe'"
    assert "Traceback" not in r.err


@pytest.mark.parametrize("offer", ["on", "off"])
def test_net_guest_timing_mode(offer: str) -> None:
    """bench/ring_costs.py's guest probe: every figure present and non-zero
    (a kick without the ring is an unhandled port: only with the ring)."""
    require_kvm()
    r = run_piped("--handlers=native", f"--net-ring={offer}", "--net={pipe0}", guest("net"),
                  GUEST0, "timing", "1000")
    if offer == "off":
        assert r.status == 1 and "Invalid guest port access" in r.err, r.output
        return
    assert r.status == 0, r.output
    line = next(ln for ln in r.out.splitlines() if ln.startswith("TIMING "))
    figures = dict(kv.split("=") for kv in line.split()[1:])
    assert set(figures) == {"loop_iteration_ns", "nop_ns", "kick_ns", "walltime_ns",
                            "copy1400_ns"}
    assert all(int(v) > 0 for v in figures.values()), line


def test_other_platforms_get_the_ring() -> None:
    """bhyve has no kvm_pvm counterpart to detect: auto offers the ring."""
    assert ring_pays("freebsd14")
