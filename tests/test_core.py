"""Issue 1 (core): our guests through the real CLI on real KVM, exact
statuses and outputs, in both handler modes where it matters."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, guest, kvm_is_pvm, require_kvm, run_tender, tender_cmd

pytestmark = pytest.mark.usefixtures("kvm")

MEM = "--mem=64"


def expect_success(r) -> None:  # type: ignore[no-untyped-def]
    assert r.status == 0, r.output
    assert "SUCCESS" in r.out
    assert "Traceback" not in r.output


def expect_abort(r) -> None:  # type: ignore[no-untyped-def]
    assert r.status == 255, r.output
    assert "ABORT" in r.out
    assert "Traceback" not in r.output


def expect_fatal(r, text: str) -> None:  # type: ignore[no-untyped-def]
    assert r.status == 1, r.output
    assert f"pytender: {text}" in r.err, r.err
    assert "Traceback" not in r.output
    assert "FAILURE" not in r.out


def test_hello(handlers: str) -> None:
    r = run_tender(MEM, handlers, guest("hello"), "Hello_Solo5")
    expect_success(r)
    assert "Hello, World" in r.out
    assert "Solo5:" not in r.output   # the tender never speaks as the guest


def test_hello_default_mem_and_4096() -> None:
    expect_success(run_tender(guest("hello"), "Hello_Solo5"))
    r = run_tender("--mem=4096", guest("hello"), "Hello_Solo5")
    expect_success(r)
    assert "mem=0x100000000" in r.out


def test_hello_checks_cmdline() -> None:
    r = run_tender(MEM, guest("hello"), "Hello", "Solo5")
    assert r.status == 1
    assert 'cmdline="Hello Solo5"' in r.out
    assert "FAILURE" in r.out


def test_args_after_kernel_go_to_guest_verbatim() -> None:
    r = run_tender(MEM, guest("hello"), "--help", "--mem=2")
    assert r.status == 1
    assert 'cmdline="--help --mem=2"' in r.out
    assert "usage:" not in r.err


def test_hvt_grammar_entry_point() -> None:
    r = run_tender(MEM, "--", guest("hello"), "Hello_Solo5", hvt=True)
    expect_success(r)
    r = run_tender("--bogus", guest("hello"), hvt=True)
    assert r.status == 1
    assert "pytender-hvt: Invalid option: `--bogus'" in r.err


def test_installed_console_scripts() -> None:
    bindir = os.path.dirname(sys.executable)
    for name in ("pytender", "pytender-hvt", "solo5-hvt"):
        path = os.path.join(bindir, name)
        assert os.access(path, os.X_OK), f"{name} not installed next to {sys.executable}"
    proc = subprocess.run([os.path.join(bindir, "solo5-hvt"), MEM, guest("hello"),
                           "Hello_Solo5"], capture_output=True, timeout=120)
    assert proc.returncode == 0 and b"SUCCESS" in proc.stdout


def test_quiet() -> None:
    r = run_tender(MEM, "--", guest("quiet"), "--solo5:quiet")
    expect_success(r)
    assert r.out == "SUCCESS\n"


def test_output_single_puts_4k(handlers: str) -> None:
    r = run_tender(MEM, handlers, guest("output"), "Output_Solo5")
    assert r.status == 0, r.output
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/"
    expected = "".join(
        "".join(alphabet[(line + i) % 64] for i in range(63)) + "\n" for line in range(64)
    )
    assert r.out.endswith(expected)


def test_globals() -> None:
    expect_success(run_tender(MEM, guest("globals")))


def test_tls() -> None:
    expect_success(run_tender(MEM, guest("tls")))


@pytest.mark.parametrize("name", ["exception", "zeropage", "notls", "ssp", "abort"])
def test_aborts(name: str) -> None:
    r = run_tender(MEM, guest(name))
    expect_abort(r)
    if name == "ssp":
        assert "Stack corruption detected" in r.out
    if name in ("exception", "zeropage", "notls"):
        assert "#PF" in r.out


@pytest.mark.parametrize(("arg", "status"), [("0", 0), ("7", 7), ("256", 0), ("-2", 254),
                                             ("255", 255)])
def test_exit_status(arg: str, status: int) -> None:
    r = run_tender(MEM, guest("exit"), arg)
    assert r.status == status, r.output


def test_time(handlers: str) -> None:
    expect_success(run_tender(MEM, handlers, guest("time")))


def test_fpu() -> None:
    r = run_tender(MEM, guest("fpu"))
    if kvm_is_pvm():
        # kvm_pvm cannot run guest SSE arithmetic under any tender.
        expect_fatal(r, "KVM: internal error exit: suberror=0x1")
    else:
        expect_success(r)


@pytest.mark.parametrize("name", ["wtext", "wrodata"])
def test_write_to_readonly_segment_is_a_translation_fault(name: str) -> None:
    r = run_tender(MEM, guest(name))
    expect_fatal(r, "KVM: host/guest translation fault: rip=0x")


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("puts-oob", "Invalid guest access: gpa=0x3ffffff, sz=1"),
        ("puts-huge", "Invalid guest access: gpa=0x"),
        ("puts-wrap", "Invalid guest access: gpa=0xffffffffffff0000, sz=131072"),
        ("arg-oob", "Invalid guest access: gpa=0x4001000, sz=16"),
        ("arg-last", "Invalid guest access: gpa=0x3fffff0, sz=16"),
        ("bad-nr", "Invalid guest hypercall: num=0"),
        ("bad-nr9", "Invalid guest port access: port=0x509"),
        ("port-in", "Invalid guest port access: port=0x5"),
        ("port-size", "Invalid guest port access: port=0x5"),
        ("port-far", "Invalid guest port access: port=0x1234"),
        ("halt-cookie-oob", "Invalid guest access: gpa=0x3ffff9c, sz=512"),
        ("walltime-ro", "Invalid guest access: gpa=0x"),
        ("block-nodev", "Invalid guest hypercall: num=5"),
    ],
)
def test_hostile_guest_is_stopped(mode: str, message: str, handlers: str) -> None:
    expect_fatal(run_tender(MEM, handlers, guest("hostile"), mode), message)


@pytest.mark.parametrize("mode", ["poll-zero", "pagetables"])
def test_hostile_guest_harmless_modes(mode: str, handlers: str) -> None:
    expect_success(run_tender(MEM, handlers, guest("hostile"), mode))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_the_tender(sig: int) -> None:
    proc = subprocess.Popen(tender_cmd(MEM, guest("time")), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()   # the guest is running once it printed
    assert b"GUEST" in line
    time.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert f"pytender: Exiting on signal {int(sig)}".encode() in err
    assert b"Traceback" not in err


def test_library_api(capfd: pytest.CaptureFixture[str]) -> None:
    require_kvm()
    from tender import Tender, VmConfig

    out = Tender(VmConfig(kernel=guest("hello"), args=(b"Hello_Solo5",), mem=64 << 20)).run()
    assert out.exit_code == 0 and not out.aborted
    assert out.hypercalls["puts"] >= 1 and out.hypercalls["halt"] == 1
    assert "SUCCESS" in capfd.readouterr().out
    out = Tender(VmConfig(kernel=guest("abort"), mem=64 << 20)).run()
    assert out.aborted and out.exit_code == 255
    assert out.trap_frame is None
    out = Tender(VmConfig(kernel=guest("zeropage"), mem=64 << 20)).run()
    assert out.aborted and out.trap_frame is not None
    assert out.trap_frame[0] == 8   # cr2: the faulting address


def test_boot_state_seen_by_the_guest() -> None:
    """rtcheck verifies boot info, manifest copy and command-line addresses,
    FS base and stack position from inside the guest."""
    r = run_tender(MEM, guest("rtcheck"), "a", "b")
    expect_success(r)
    assert 'rtcheck: cmdline "a b"' in r.out


def test_triple_fault_is_reported() -> None:
    """An empty IDT and an exception: the CPU shuts down (KVM_EXIT_SHUTDOWN;
    some KVMs report an internal error instead). One line, exit 1."""
    r = run_tender(MEM, guest("hostile"), "triple-fault")
    assert r.status == 1, r.output
    assert ("pytender: KVM: unhandled exit: exit_reason=0x8, rip=0x" in r.err
            or "pytender: KVM: internal error exit: suberror=0x" in r.err), r.err
    assert "FAILURE" not in r.out and "Traceback" not in r.err


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        # The crafted text is `hlt; jmp .`: KVM_EXIT_HLT (5) is not a hypercall.
        (0x100000, ("KVM: unhandled exit: exit_reason=0x5, rip=0x100001",)),
        # Inside memory but outside every segment (spec 2.2 only checks the
        # range): the CPU runs zeroed memory, faults with no IDT and shuts down.
        (0x300000, ("KVM: unhandled exit: exit_reason=0x8, rip=0x",
                    "KVM: internal error exit: suberror=0x")),
    ],
)
def test_crafted_images_end_with_one_line(tmp_path, entry: int, expected: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    from elfcraft import Guest

    path = tmp_path / "crafted.hvt"
    path.write_bytes(Guest(entry=entry).build())
    r = run_tender(MEM, str(path))
    assert r.status == 1, r.output
    assert any(f"pytender: {e}" in r.err for e in expected), r.err
    assert "Traceback" not in r.err and r.err.count("\n") == 1


def test_unattached_unknown_device_type_is_named_as_upstream(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from elfcraft import Guest, abi_note, mft_note, mft_payload

    path = tmp_path / "type3.hvt"
    path.write_bytes(Guest(notes=[abi_note(), mft_note(mft_payload([("odd", 3)]))]).build())
    r = run_tender(MEM, str(path))
    assert r.status == 1, r.output
    assert "pytender: Device 'odd' of type <undefined type> declared but not attached.\n" in r.err
    assert "of type 3" not in r.err and "Traceback" not in r.err


def test_many_read_only_segments_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """65 separate read-only PT_LOADs (the old limit was 64): solo5-hvt has
    no limit, nor do we."""
    from elfcraft import DATA_OFF, PF_R, PT_LOAD, Guest, Phdr

    g = Guest(notes_off=0x3000, file_size=0x4000)
    g.loads += [Phdr(PT_LOAD, PF_R, DATA_OFF, 0x200000 + i * 0x2000, 4, 0x1000)
                for i in range(65)]
    path = tmp_path / "ro65.hvt"
    path.write_bytes(g.build())
    r = run_tender(MEM, str(path))
    # It boots: the crafted text is `hlt; jmp .`.
    assert r.err == "pytender: KVM: unhandled exit: exit_reason=0x5, rip=0x100001\n", r.err
    assert r.status == 1


def test_sparse_padded_kernel_boots_without_reading_the_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """hello padded with a hole to 4097 MiB: solo5-hvt runs it, so do we, and
    only the headers, notes and PT_LOAD ranges are read (peak RSS stays small)."""
    path = tmp_path / "padded.hvt"
    path.write_bytes(open(guest("hello"), "rb").read())
    os.truncate(path, 4097 << 20)
    r = subprocess.run(
        [sys.executable, "-c",
         "import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
         "sys.exit(p.returncode)",
         *tender_cmd(MEM, str(path), "Hello_Solo5")],
        capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout
    maxrss_kib = int(r.stderr.strip().splitlines()[-1])
    assert maxrss_kib < 512 << 10, maxrss_kib     # far below the file's 4 GiB
