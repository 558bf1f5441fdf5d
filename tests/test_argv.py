"""Pure command-line grammar (spec 7.2), without KVM."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tender import abi
from tender.argv import pass1, pass2
from tender.config import HandlerMode
from tender.errors import TenderError, UsageError
from tender.manifest import Entry, Manifest, reserved_entry

MFT = Manifest((reserved_entry(), Entry("storage", abi.DeviceType.BLOCK_BASIC),
                Entry("service0", abi.DeviceType.NET_BASIC)))


def test_pass1_finds_kernel() -> None:
    p = pass1(["--mem=8", "k.hvt", "--help", "x"])
    assert (p.action, p.options, p.kernel, p.args) == ("run", ("--mem=8",), "k.hvt",
                                                       ("--help", "x"))
    p = pass1(["--mem=8", "--", "-k.hvt", "a"])
    assert (p.kernel, p.args, p.options) == ("-k.hvt", ("a",), ("--mem=8",))


def test_pass1_help_version_and_missing() -> None:
    assert pass1(["--mem=1", "--help", "k"]).action == "help"
    assert pass1(["--version"]).action == "version"
    for argv in ([], ["--mem=1"], ["--mem=1", "--"]):
        with pytest.raises(UsageError, match="Missing KERNEL operand"):
            pass1(argv)


def test_pass2_devices() -> None:
    c = pass2(pass1(["--block-sector-size:storage=4096", "--block:storage=/a",
                     "--net:service0=tap0", "--net-mac:service0=02:00:00:00:00:01",
                     "--mem=64", "--handlers=python", "k", "x y"]), MFT)
    assert [(b.name, b.path, b.block_size) for b in c.blocks] == [("storage", "/a", 4096)]
    assert [(n.name, n.iface, n.mac) for n in c.nets] == [
        ("service0", "tap0", bytes([2, 0, 0, 0, 0, 1]))]
    assert c.mem == 64 << 20 and c.handlers is HandlerMode.PYTHON
    assert c.args == (b"x y",)


def test_pass2_shorthands() -> None:
    c = pass2(pass1(["--disk=/img", "--net=tap9", "k"]), MFT)
    assert c.blocks[0].name == "storage" and c.nets[0].name == "service0"


def test_pass2_last_wins() -> None:
    c = pass2(pass1(["--mem=8", "--mem=16", "--block:storage=/a", "--block:storage=/b", "k"]),
              MFT)
    assert c.mem == 16 << 20 and [b.path for b in c.blocks] == ["/b"]


@pytest.mark.parametrize(
    ("arg", "detail"),
    [
        ("--block:nosuch=/a", "Resource not declared in manifest: 'nosuch'"),
        ("--block:service0=/a", "Resource not declared in manifest: 'service0'"),
        ("--net:storage=tap0", "Resource not declared in manifest: 'storage'"),
        ("--block-sector-size:storage=1000",
         "Block size must be a multiple of 2 greater than or equal 512"),
        ("--block-sector-size:storage=256",
         "Block size must be a multiple of 2 greater than or equal 512"),
        ("--net-mac:service0=zz:00:00:00:00:00", None),
        ("--block:bad-name=/a", None),
        ("--net:service0=waytoolongifacename0", None),
        ("--mem", None),
        ("--handlers=fast", None),
        ("-x", None),
    ],
)
def test_pass2_invalid(arg: str, detail: str | None) -> None:
    with pytest.raises(UsageError) as info:
        pass2(pass1([arg, "k"]), MFT)
    assert info.value.message == f"Invalid option: `{arg}'"
    assert info.value.detail == ((detail,) if detail else ())


def test_gdb_port() -> None:
    assert pass2(pass1(["--gdb", "--gdb-port=4444", "k"]), MFT).gdb_port == 4444
    assert pass2(pass1(["--gdb", "k"]), MFT).gdb_port == 1234
    assert pass2(pass1(["--gdb-port=4444", "k"]), MFT).gdb_port is None
    with pytest.raises(TenderError, match="Malformed argument to --gdb-port") as info:
        pass2(pass1(["--gdb-port=70000", "k"]), MFT)
    assert not isinstance(info.value, UsageError)   # a plain fatal, no usage text


_ARG = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["--", "--mem=", "--mem=64", "--block:storage=", "--net:service0=",
                     "--block-sector-size:storage=", "--net-mac:service0=", "--disk=",
                     "--net=", "--gdb", "--gdb-port=", "--handlers=", "--trace=",
                     "--dumpcore=", "k.hvt"]).flatmap(
        lambda p: st.text(max_size=20).map(lambda t: p + t)),
)


@given(st.lists(_ARG, max_size=8))
def test_any_argv_gives_a_config_or_a_tender_error(argv: list[str]) -> None:
    try:
        pass2(pass1(argv), MFT)
    except TenderError as exc:
        assert exc.message and "\n" not in exc.message


def test_attach_order_follows_the_command_line() -> None:
    c = pass2(pass1(["--net:service0=tap0", "--mem=8", "--disk=/img", "k"]), MFT)
    assert c.attach_order == ("service0", "storage")


def test_options_before_a_bad_one_are_kept() -> None:
    from tender.argv import pass2_prefix

    c, err = pass2_prefix(pass1(["--block:storage=/img", "--bogus", "--net=tap0", "k"]), MFT)
    assert isinstance(err, UsageError) and err.message == "Invalid option: `--bogus'"
    assert [b.path for b in c.blocks] == ["/img"] and c.nets == ()


def test_a_non_ascii_digit_sector_size_is_a_tender_error() -> None:
    # str.isdigit() accepts '¹', which int() refuses (found by hypothesis).
    with pytest.raises(UsageError) as info:
        pass2(pass1(["--block-sector-size:0=¹", ""]), MFT)
    assert info.value.message == "Invalid option: `--block-sector-size:0=¹'"
    assert info.value.detail == (
        "Block size must be a multiple of 2 greater than or equal 512",)
