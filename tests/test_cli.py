"""Command-line behaviour: usage, version, errors, memory options. Each bad
input gives one line and exit 1, never a traceback."""

from __future__ import annotations

import pytest
from conftest import guest, run_tender

MEM = "--mem=64"


def one_line_error(r, text: str) -> None:  # type: ignore[no-untyped-def]
    assert r.status == 1, r.output
    assert f"pytender: {text}" in r.err, r.err
    assert "Traceback" not in r.output
    assert r.out == ""


def test_help() -> None:
    r = run_tender("--help")
    assert r.status == 1
    assert r.err.startswith("usage: pytender [ CORE OPTIONS ]")
    assert "--block:NAME=PATH" in r.err and "--net:NAME=IFACE" in r.err


def test_version() -> None:
    r = run_tender("--version")
    assert r.status == 0
    assert "ABI version 2" in r.err.splitlines()


def test_missing_kernel() -> None:
    r = run_tender(MEM)
    one_line_error(r, "Missing KERNEL operand")
    assert "usage:" in r.err


def test_invalid_option() -> None:
    r = run_tender("--frob", guest("hello"))
    one_line_error(r, "Invalid option: `--frob'")
    r = run_tender("--mem", guest("hello"))
    one_line_error(r, "Invalid option: `--mem'")


def test_kernel_not_found(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = run_tender(str(tmp_path / "nope.hvt"))
    one_line_error(r, f"{tmp_path}/nope.hvt: Could not open")


def test_not_an_elf() -> None:
    r = run_tender("/etc/passwd")
    one_line_error(r, "/etc/passwd: invalid executable: invalid or unsupported executable "
                      "(elf header invalid while loading note)")


def test_host_binary_is_not_hvt() -> None:
    r = run_tender("/bin/true")
    assert r.status == 1
    assert "Traceback" not in r.output


@pytest.mark.parametrize("arg", ["--mem=0", "--mem=", "--mem=abc", "--mem=-"])
def test_malformed_mem(arg: str) -> None:
    one_line_error(run_tender(arg, guest("hello")), "Malformed argument to --mem")


def test_mem_too_big() -> None:
    one_line_error(run_tender("--mem=4098", guest("hello")),
                   "guest memory size 4297064448 bytes exceeds the max size 4294967296 bytes")


@pytest.mark.parametrize("arg", ["--mem=1", "--mem=3"])
def test_mem_adjusted_with_warning(arg: str) -> None:
    r = run_tender(arg, guest("exit"), "0")
    assert "pytender: adjusting memory to 2097152 bytes" in r.err
    assert "Traceback" not in r.output


def test_mem_trailing_junk_ignored() -> None:
    r = run_tender("--mem=64MB", guest("hello"), "Hello_Solo5")
    assert r.status == 0
    assert "mem=0x4000000" in r.out


def test_cmdline_too_long() -> None:
    r = run_tender(MEM, guest("hello"), "x" * 8192)
    one_line_error(r, "Guest command line too long (max=8191 characters)")
    r = run_tender(MEM, guest("hello"), "x" * 8191)
    assert r.status == 1 and "FAILURE" in r.out   # accepted, just not Hello_Solo5


def test_unknown_device_name() -> None:
    r = run_tender("--block:nosuch=/dev/null", guest("hello"))
    assert r.status == 1
    assert "pytender: Resource not declared in manifest: 'nosuch'" in r.err
    assert "pytender: Invalid option: `--block:nosuch=/dev/null'" in r.err


def test_declared_device_not_attached() -> None:
    r = run_tender(MEM, guest("blk"))
    assert r.status == 1
    assert "pytender: Device 'storage' of type BLOCK_BASIC declared but not attached." in r.err
    assert "pytender: All declared devices must be attached. See --help for syntax." in r.err
    assert r.out == ""


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/null", "/proc/self"])
def test_kernel_not_a_regular_file(path: str) -> None:
    r = run_tender(MEM, path)
    one_line_error(r, f"{path}: Could not open")
    assert "Traceback" not in r.output


def test_fatal_errors_print_no_usage() -> None:
    for args in (("--mem=0", guest("hello")), (MEM, guest("blk"))):
        r = run_tender(*args)
        assert r.status == 1 and "usage:" not in r.err, r.err
