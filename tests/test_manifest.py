"""tender.manifest: MFT v1 decode/validate/encode, elftool JSON, notes, CLI."""

from __future__ import annotations

import json
import pathlib
import shutil
import struct
import subprocess
import sys

import pytest
from elfcraft import Guest, abi_note, mft_payload
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tender import abi, elf, manifest
from tender.errors import ManifestError
from tender.manifest import Entry, Manifest

INVALID = "Solo5 manifest is invalid"
ENTRY = struct.Struct("<68sI16sQ?7x")


def src(*devices: tuple[str, str]) -> str:
    return json.dumps({
        "type": "solo5.manifest",
        "version": 1,
        "devices": [{"name": n, "type": t} for n, t in devices],
    })


def raw_mft(entries: list[bytes], version: int = 1, count: int | None = None) -> bytes:
    return struct.pack("<II", version, len(entries) if count is None else count) + b"".join(
        entries)


def raw_entry(name: bytes = b"", type_: int = 1, attached: bool = False,
              u: bytes = bytes(16), b: int = 0) -> bytes:
    return ENTRY.pack(name, type_, u, b, attached)


RESERVED = raw_entry(b"", 0x40000000)


def invalid(payload: bytes) -> None:
    with pytest.raises(ManifestError) as ei:
        manifest.decode(payload)
    assert ei.value.message == INVALID


def json_err(text: str) -> str:
    with pytest.raises(ManifestError) as ei:
        manifest.from_json(text)
    msg = ei.value.message
    assert "\n" not in msg
    return msg


# --------------------------------------------------------------------------
# layout


def test_struct_sizes() -> None:
    assert manifest.HEADER_SIZE == 8
    assert manifest.ENTRY_SIZE == 104


def test_entry_layout_matches_abi_struct() -> None:
    e = Entry(name="blk0", type=1).block(capacity=0x1122334455, block_size=512, fd=7)
    raw = e.to_bytes()
    name, t, u, b, attached = abi.MFT_ENTRY.unpack(raw)
    assert name.rstrip(b"\x00") == b"blk0" and t == 1 and b == 7 and attached is True
    assert struct.unpack_from("<QH", u) == (0x1122334455, 512)
    assert e.capacity == 0x1122334455 and e.block_size == 512


def test_net_union() -> None:
    e = Entry(name="n", type=2).net(b"\x02\x00\x00\x00\x00\x01", 1500, 9)
    assert e.attached and e.hostfd == 9 and e.mac == b"\x02\x00\x00\x00\x00\x01"
    assert e.mtu == 1500
    assert e.to_bytes()[72:80] == b"\x02\x00\x00\x00\x00\x01" + struct.pack("<H", 1500)


def test_negative_hostfd_roundtrip_low_half() -> None:
    raw = Entry(name="x", type=1, hostfd=-1).to_bytes()
    assert raw[88:96] == b"\xff\xff\xff\xff\x00\x00\x00\x00"


def test_to_bytes_size() -> None:
    for n in (0, 1, 5, 63):
        m = manifest.from_json(src(*[(f"d{i}", "NET_BASIC") for i in range(n)]))
        assert len(m.to_bytes()) == 8 + 104 * (n + 1)
        assert struct.unpack_from("<II", m.to_bytes()) == (1, n + 1)


def test_to_bytes_bad_name() -> None:
    for name in ("a" * 68, "a\x00b", "\ud800"):
        with pytest.raises(ManifestError):
            Manifest((manifest.reserved_entry(), Entry(name=name, type=1))).to_bytes()


# --------------------------------------------------------------------------
# decode: the tender's 6 rules


def test_decode_good() -> None:
    payload = raw_mft([RESERVED, raw_entry(b"blk", 1), raw_entry(b"net0", 2)])
    m = manifest.decode(payload)
    assert [(h, e.name, e.type) for h, e in m.devices()] == [(1, "blk", 1), (2, "net0", 2)]
    assert m.entries[0].name == "" and m.entries[0].type == 0x40000000
    assert m.to_bytes() == payload


def test_decode_only_reserved() -> None:
    assert manifest.decode(raw_mft([RESERVED])).devices() == ()


def test_rule1_too_short() -> None:
    for n in range(8):
        invalid(bytes(n))


def test_rule2_version() -> None:
    invalid(raw_mft([RESERVED], version=2))
    invalid(raw_mft([RESERVED], version=0))


def test_rule3_max_entries() -> None:
    entries = [RESERVED] + [raw_entry(b"d%d" % i) for i in range(63)]
    assert len(manifest.decode(raw_mft(entries)).entries) == 64
    invalid(raw_mft([*entries, raw_entry(b"x")]))
    invalid(raw_mft([RESERVED], count=65))
    invalid(raw_mft([RESERVED], count=0xFFFFFFFF))


def test_rule4_exact_size() -> None:
    invalid(raw_mft([RESERVED, raw_entry(b"a")], count=1))
    invalid(raw_mft([RESERVED], count=2))
    invalid(raw_mft([RESERVED]) + b"\x00")
    invalid(raw_mft([RESERVED])[:-1])


def test_rule5_reserved_entry() -> None:
    invalid(raw_mft([]))                                      # entries == 0
    invalid(raw_mft([raw_entry(b"", 1)]))                     # wrong type
    invalid(raw_mft([raw_entry(b"", 0x40000001)]))
    invalid(raw_mft([raw_entry(b"x", 0x40000000)]))           # name[0] != 0
    # only name[0] is checked for entry 0
    m = manifest.decode(raw_mft([raw_entry(b"\x00junk", 0x40000000)]))
    assert m.entries[0].name == ""


def test_rule6_name_terminated_and_not_attached() -> None:
    invalid(raw_mft([RESERVED, raw_entry(b"a" * 68)]))
    invalid(raw_mft([RESERVED, raw_entry(b"a", attached=True)]))
    invalid(raw_mft([raw_entry(b"", 0x40000000, attached=True)]))
    bad_attached = bytearray(raw_mft([RESERVED, raw_entry(b"a")]))
    bad_attached[8 + 104 + 96] = 0x80                         # any non-zero byte
    invalid(bytes(bad_attached))
    # 67 characters is fine
    m = manifest.decode(raw_mft([RESERVED, raw_entry(b"a" * 67)]))
    assert m.entries[1].name == "a" * 67


def test_decode_does_not_check_types_or_duplicates() -> None:
    m = manifest.decode(raw_mft([RESERVED, raw_entry(b"a", 77), raw_entry(b"a", 1)]))
    assert m.entries[1].type == 77 and m.entries[1].type_name == "0x4d"
    assert m.find("a") == (1, m.entries[1])


def test_decode_keeps_union_and_non_utf8_names() -> None:
    payload = raw_mft([RESERVED, raw_entry(b"\xff\xfe", 1, u=bytes(range(16)), b=5)])
    m = manifest.decode(payload)
    assert m.entries[1].u == bytes(range(16)) and m.entries[1].hostfd == 5
    assert m.to_bytes() == payload


# --------------------------------------------------------------------------
# Manifest helpers


def test_find_devices_replace() -> None:
    m = manifest.from_json(src(("disk", "BLOCK_BASIC"), ("net0", "NET_BASIC")))
    assert m.find("net0") == (2, Entry(name="net0", type=2))
    assert m.find("") is None and m.find("nope") is None
    h, e = m.find("disk") or (0, m.entries[0])
    m2 = m.replace(h, e.block(4096, 512, 3))
    assert m2.entries[1].attached and not m.entries[1].attached
    assert m2.to_bytes()[8 + 104 + 96] == 1
    with pytest.raises(IndexError):
        m.replace(3, e)


def test_attached_manifest_does_not_decode_but_note_is_clean() -> None:
    m = manifest.from_json(src(("disk", "BLOCK_BASIC")))
    m2 = m.replace(1, m.entries[1].block(1, 512, 3))
    invalid(m2.to_bytes())
    assert manifest.decode(manifest.note_bytes(m2)[24:]) == m


def test_type_names() -> None:
    assert Entry(name="a", type=1).type_name == "BLOCK_BASIC"
    assert Entry(name="a", type=2).type_name == "NET_BASIC"


# --------------------------------------------------------------------------
# JSON (elftool rules)


def test_from_json_roundtrip_through_note() -> None:
    m = manifest.from_json(src(("blk0", "BLOCK_BASIC"), ("net0", "NET_BASIC")))
    assert [(h, e.name, e.type) for h, e in m.devices()] == [(1, "blk0", 1), (2, "net0", 2)]
    note = manifest.note_bytes(m)
    namesz, descsz, ntype = struct.unpack_from("<III", note)
    assert (namesz, descsz, ntype) == (6, 4 + 8 + 104 * 3, abi.NOTE_TYPE_MFT)
    assert note[12:20] == b"Solo5\x00\x00\x00" and note[20:24] == bytes(4)
    assert len(note) == 24 + 8 + 104 * 3
    assert manifest.decode(note[24:]) == m


def test_from_json_through_elf_notes() -> None:
    m = manifest.from_json(src(("a1", "NET_BASIC")))
    g = Guest(notes=[manifest.abi_note_bytes(), manifest.note_bytes(m)])
    notes = elf.read_notes(g.build(), "g")
    assert notes.abi == elf.AbiNote(1, 2)
    assert manifest.decode(notes.manifest_payload) == m


def test_abi_note_bytes() -> None:
    assert manifest.abi_note_bytes() == abi_note()


def test_empty_devices() -> None:
    m = manifest.from_json(src())
    assert m.entries == (manifest.reserved_entry(),)
    assert manifest.decode(manifest.note_bytes(m)[24:]) == m
    assert mft_payload() == m.to_bytes()


def test_63_ok_64_too_many() -> None:
    m = manifest.from_json(src(*[(f"d{i}", "BLOCK_BASIC") for i in range(63)]))
    assert len(m.entries) == 64
    assert manifest.decode(manifest.note_bytes(m)[24:]) == m
    assert len(manifest.note_bytes(m)) - 20 == abi.MFT_NOTE_MAX
    assert json_err(src(*[(f"d{i}", "BLOCK_BASIC") for i in range(64)])) == (
        "too many entries, maximum 63")


@pytest.mark.parametrize("name", ["", "a" * 68, "a-b", "a b", "a_b", "é", "ab\u0661", "x\x00"])
def test_bad_names(name: str) -> None:
    assert "name" in json_err(src((name, "NET_BASIC")))


def test_name_67_ok() -> None:
    assert manifest.from_json(src(("A" * 67, "NET_BASIC"))).entries[1].name == "A" * 67


def test_duplicate_names() -> None:
    assert "duplicate" in json_err(src(("a", "NET_BASIC"), ("a", "BLOCK_BASIC")))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        "null",
        '{"type":"solo5.manifest","version":1}',
        '{"type":"solo5.manifes","version":1,"devices":[]}',
        '{"version":1,"devices":[]}',
        '{"type":"solo5.manifest","version":2,"devices":[]}',
        '{"type":"solo5.manifest","version":"1","devices":[]}',
        '{"type":"solo5.manifest","version":true,"devices":[]}',
        '{"type":"solo5.manifest","devices":[]}',
        '{"type":"solo5.manifest","version":1,"devices":{}}',
        '{"type":"solo5.manifest","version":1,"devices":[], "x":1}',
        '{"type":"solo5.manifest","version":1,"devices":[1]}',
        '{"type":"solo5.manifest","version":1,"devices":[{"name":"a"}]}',
        '{"type":"solo5.manifest","version":1,"devices":[{"type":"NET_BASIC"}]}',
        '{"type":"solo5.manifest","version":1,"devices":[{"name":1,"type":"NET_BASIC"}]}',
        '{"type":"solo5.manifest","version":1,"devices":[{"name":"a","type":"BLOCK"}]}',
        '{"type":"solo5.manifest","version":1,"devices":[{"name":"a","type":1}]}',
        '{"type":"solo5.manifest","version":1,'
        '"devices":[{"name":"a","type":"NET_BASIC","mtu":1}]}',
        "[" * 100000,
    ],
)
def test_malformed_json(text: str) -> None:
    json_err(text)


# --------------------------------------------------------------------------
# C source


def test_gen_c_source_shape() -> None:
    m = manifest.from_json(src(("net0", "NET_BASIC")))
    c = manifest.gen_c_source(m)
    assert 'section(".note.solo5.manifest")' in c and "aligned(8)" in c and "used" in c
    assert "const unsigned char" in c
    a = manifest.abi_note_c_source()
    assert 'section(".note.solo5.abi")' in a and "aligned(4)" in a


LDS = """
PHDRS {
  text PT_LOAD FLAGS(1);
  note_abi PT_NOTE;
  note_mft PT_NOTE;
}
ENTRY(_start)
SECTIONS {
  . = 0x100000;
  .text : { *(.text*) } :text
  .note.solo5.abi : { KEEP(*(.note.solo5.abi)) } :text :note_abi
  .note.solo5.manifest : { KEEP(*(.note.solo5.manifest)) } :text :note_mft
  /DISCARD/ : { *(.comment) *(.note.GNU-stack) *(.note.gnu.property) *(.eh_frame) }
}
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_generated_c_links_into_loadable_notes(tmp_path: pathlib.Path) -> None:
    mj = tmp_path / "manifest.json"
    mj.write_text(src(("blk", "BLOCK_BASIC"), ("net", "NET_BASIC")))
    out_c = tmp_path / "manifest.c"
    assert manifest.main(["gen", str(mj), str(out_c)]) == 0
    (tmp_path / "start.c").write_text("void _start(void) { for (;;) __asm__(\"hlt\"); }\n")
    (tmp_path / "link.lds").write_text(LDS)
    exe = tmp_path / "g.hvt"
    r = subprocess.run(
        ["gcc", "-static", "-nostdlib", "-ffreestanding", "-fno-pie", "-no-pie", "-O2",
         "-Wall", "-Werror", "-z", "max-page-size=0x1000", "-T", str(tmp_path / "link.lds"),
         "-o", str(exe), str(tmp_path / "start.c"), str(out_c)],
        capture_output=True, text=True, check=False,
    )
    if r.returncode != 0:
        pytest.skip(f"toolchain cannot build test guest: {r.stderr.strip()[:200]}")
    data = exe.read_bytes()
    notes = elf.read_notes(data, str(exe))
    m = manifest.decode(notes.manifest_payload)
    assert [(e.name, e.type_name) for _, e in m.devices()] == [
        ("blk", "BLOCK_BASIC"), ("net", "NET_BASIC")]


# --------------------------------------------------------------------------
# CLI


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "tender.manifest", *args],
                       capture_output=True, text=True, check=False,
                       cwd=pathlib.Path(__file__).resolve().parent.parent)
    # runpy warns when tender/__init__.py already imported tender.manifest
    # (eager package imports); that is the package's business, not the CLI's.
    r.stderr = "".join(line for line in r.stderr.splitlines(keepends=True)
                       if not line.startswith("<frozen runpy>"))
    return r


def test_cli_gen_dev_null(tmp_path: pathlib.Path) -> None:
    mj = tmp_path / "m.json"
    mj.write_text(src(("a", "NET_BASIC")))
    r = run_cli("gen", str(mj), "/dev/null")
    assert r.returncode == 0 and r.stderr == ""


def test_cli_gen_writes_both_notes(tmp_path: pathlib.Path) -> None:
    mj = tmp_path / "m.json"
    mj.write_text(src())
    out = tmp_path / "o.c"
    assert manifest.main(["gen", str(mj), str(out)]) == 0
    text = out.read_text()
    assert ".note.solo5.abi" in text and ".note.solo5.manifest" in text


def test_cli_gen_errors(tmp_path: pathlib.Path) -> None:
    mj = tmp_path / "m.json"
    mj.write_text(src(*[(f"d{i}", "NET_BASIC") for i in range(64)]))
    r = run_cli("gen", str(mj), "/dev/null")
    assert r.returncode == 1
    assert r.stderr == f"tender.manifest: {mj}: too many entries, maximum 63\n"
    r = run_cli("gen", str(tmp_path / "missing.json"), "/dev/null")
    assert r.returncode == 1 and r.stderr.startswith("tender.manifest: ")
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    mj.write_text("{nope")
    r = run_cli("gen", str(mj), str(tmp_path / "nodir" / "o.c"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    r = run_cli("frob")
    assert r.returncode == 1 and "usage" in r.stderr


def test_cli_dump(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = manifest.from_json(src(("disk", "BLOCK_BASIC")))
    g = tmp_path / "g.hvt"
    g.write_bytes(Guest(notes=[manifest.abi_note_bytes(), manifest.note_bytes(m)]).build())
    assert manifest.main(["dump", str(g)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"type": "solo5.manifest", "version": 1,
                   "devices": [{"name": "disk", "type": "BLOCK_BASIC"}]}
    assert manifest.from_json(json.dumps(out)) == m
    # invalid manifest and bad ELF both give one-line errors
    g.write_bytes(Guest(notes=[abi_note(), manifest.note_bytes(m)[:-104]]).build())
    assert manifest.main(["dump", str(g)]) == 1
    assert "manifest" in capsys.readouterr().err
    g.write_bytes(b"not an elf")
    assert manifest.main(["dump", str(g)]) == 1
    assert "invalid executable" in capsys.readouterr().err


# --------------------------------------------------------------------------
# properties


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GOOD = manifest.from_json(src(("blk0", "BLOCK_BASIC"), ("net0", "NET_BASIC"))).to_bytes()


def _decode_ok_or_invalid(data: bytes) -> None:
    try:
        m = manifest.decode(data)
    except ManifestError as e:
        assert e.message == INVALID
        return
    # anything accepted re-encodes to a payload that decodes the same
    assert manifest.decode(m.to_bytes()) == m


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_decode_random(data: bytes) -> None:
    _decode_ok_or_invalid(data)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), max_size=8),
       st.integers(0, len(GOOD)), st.binary(max_size=16))
def test_fuzz_decode_mutated(muts: list[tuple[int, int]], cut: int, tail: bytes) -> None:
    data = bytearray(GOOD)
    for pos, val in muts:
        data[pos] = val
    _decode_ok_or_invalid(bytes(data))
    _decode_ok_or_invalid(bytes(data[:cut]))
    _decode_ok_or_invalid(bytes(data) + tail)


NAMES = st.text(alphabet=st.characters(categories=["Ll", "Lu", "Nd"], max_codepoint=0x7F),
                min_size=1, max_size=67)


@FUZZ
@given(st.lists(st.tuples(NAMES, st.sampled_from(["BLOCK_BASIC", "NET_BASIC"])),
                max_size=63, unique_by=lambda t: t[0]))
def test_fuzz_json_roundtrip(devs: list[tuple[str, str]]) -> None:
    m = manifest.from_json(src(*devs))
    payload = manifest.note_bytes(m)[24:]
    assert manifest.decode(payload) == m
    assert len(payload) == 8 + 104 * (len(devs) + 1)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8)
    | st.sampled_from(["solo5.manifest", "NET_BASIC", "BLOCK_BASIC", 1]),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "version", "devices", "name", "x"]), c, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(JSONISH)
def test_fuzz_json_schema(doc: object) -> None:
    try:
        manifest.from_json(json.dumps(doc))
    except ManifestError as e:
        assert "\n" not in e.message


@FUZZ
@given(st.text(max_size=64))
def test_fuzz_json_text(text: str) -> None:
    try:
        manifest.from_json(text)
    except ManifestError:
        pass


def test_guest_copy_is_the_payload_byte_for_byte_plus_attachments() -> None:
    """Spec 3.5: only u, b and attached of attached entries change."""
    from tender.manifest import ENTRY_SIZE, HEADER_SIZE, decode, from_json

    m = from_json('{"type":"solo5.manifest","version":1,"devices":['
                  '{"name":"disk","type":"BLOCK_BASIC"},{"name":"net","type":"NET_BASIC"}]}')
    payload = bytearray(m.to_bytes())
    off1 = HEADER_SIZE + ENTRY_SIZE
    payload[off1 + 10 : off1 + 14] = b"junk"      # after the name's NUL: kept
    payload[off1 + 100] = 0x5A                    # entry padding: kept
    decoded = decode(bytes(payload))
    attached = decoded.replace(1, decoded.entries[1].block(4096, 512, 7))
    copy = attached.guest_copy(bytes(payload))
    assert len(copy) == len(payload)
    assert copy[off1 + 10 : off1 + 14] == b"junk" and copy[off1 + 100] == 0x5A
    assert int.from_bytes(copy[off1 + 72 : off1 + 80], "little") == 4096
    assert int.from_bytes(copy[off1 + 80 : off1 + 82], "little") == 512
    assert int.from_bytes(copy[off1 + 88 : off1 + 92], "little") == 7
    assert copy[off1 + 96] == 1
    off2 = off1 + ENTRY_SIZE                       # unattached: untouched
    assert copy[off2 : off2 + ENTRY_SIZE] == bytes(payload[off2 : off2 + ENTRY_SIZE])


def test_reserved_types_need_no_attachment() -> None:
    from tender.manifest import Entry, Manifest, reserved_entry

    m = Manifest((reserved_entry(), Entry("disk", 1), Entry("future", 0x40000001)))
    assert [e.name for e in m.unattached()] == ["disk"]
