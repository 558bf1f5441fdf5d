"""Solo5 manifest (MFT v1, HVT_SPEC.md section 2.6): decode, validate, encode.

Pure module. Decoding applies the tender's validation rules (untrusted input);
`from_json` applies solo5-elftool's stricter rules for building guests, and
`note_bytes` / `gen_c_source` write the notes a guest links in.

CLI (like `solo5-elftool gen-manifest` / `query-manifest`):

    python -m tender.manifest gen MANIFEST.json OUT.c
    python -m tender.manifest dump GUEST.hvt
"""

from __future__ import annotations

import functools
import struct
import sys
from collections.abc import Sequence

from tender import abi
from tender.errors import ElfError, ManifestError
from tender.record import record, replace

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "Entry",
    "Manifest",
    "abi_note_bytes",
    "abi_note_c_source",
    "decode",
    "from_json",
    "gen_c_source",
    "main",
    "note_bytes",
    "reserved_entry",
]

INVALID = "Solo5 manifest is invalid"


HEADER_SIZE: int = abi.MFT_HEADER.size
ENTRY_SIZE: int = abi.MFT_ENTRY.size
# The fields of `struct mft_entry` the decoder reads: name[68], type u32,
# u[16], b u64, attached u8 (then 7 bytes of padding).
_ENTRY = struct.Struct("<68sI16sQB7x")
# What the tender writes into an attached entry (guest_copy): u, b, attached.
_PATCH = struct.Struct("<16sQB")


@functools.cache
def _cstructs() -> tuple[Any, Any]:
    """cstruct's `struct mft` header and `struct mft_entry`: the project's
    binary-struct library, for encoding and as the decoder's reference.
    Built on first use: cstruct's import costs more than a C boot."""
    import cstruct

    # cstruct classes are built with parse() (they are `Any` to mypy: no stubs).
    header = cstruct.CStruct.parse(
        """
        struct mft_header {
            uint32_t version;
            uint32_t entries;
        }
        """,
        __name__="tender_mft_header",
        __byte_order__=cstruct.LITTLE_ENDIAN,
    )
    entry = cstruct.CStruct.parse(
        """
        struct mft_entry {
            char name[68];
            uint32_t type;
            uint8_t u[16];
            uint64_t b;
            uint8_t attached;
            uint8_t pad[7];
        }
        """,
        __name__="tender_mft_entry",
        __byte_order__=cstruct.LITTLE_ENDIAN,
    )
    assert header.size == HEADER_SIZE == 8
    assert entry.size == ENTRY_SIZE == 104
    return header, entry


_TYPE_NAMES: dict[int, str] = {
    int(abi.DeviceType.BLOCK_BASIC): "BLOCK_BASIC",
    int(abi.DeviceType.NET_BASIC): "NET_BASIC",
}
_TYPES_BY_NAME: dict[str, int] = {v: k for k, v in _TYPE_NAMES.items()}


def _name_bytes(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


@record(frozen=True)
class Entry:
    """One `struct mft_entry`. `u` is the raw 16-byte union; `hostfd` the
    tender-private `b` union (as an int); `attached` set by the tender."""

    name: str
    type: int                   # raw u32: a DeviceType value or anything else
    u: bytes = bytes(16)        # block: capacity u64@0, block_size u16@8;
    #                             net: mac[6]@0, mtu u16@6
    hostfd: int = 0
    attached: bool = False

    # --- typed views of the union -------------------------------------------
    @property
    def type_name(self) -> str:
        """`BLOCK_BASIC` / `NET_BASIC`, or the number for any other type."""
        name = _TYPE_NAMES.get(self.type)
        return name if name is not None else f"{self.type:#x}"

    @property
    def capacity(self) -> int:
        return int.from_bytes(self.u[0:8], "little")

    @property
    def block_size(self) -> int:
        return int.from_bytes(self.u[8:10], "little")

    @property
    def mac(self) -> bytes:
        return self.u[0:6]

    @property
    def mtu(self) -> int:
        return int.from_bytes(self.u[6:8], "little")

    # --- attachment ---------------------------------------------------------
    def block(self, capacity: int, block_size: int, fd: int) -> Entry:
        """This entry, attached as a block device."""
        u = capacity.to_bytes(8, "little") + block_size.to_bytes(2, "little") + bytes(6)
        return replace(self, u=u, hostfd=fd, attached=True)

    def net(self, mac: bytes, mtu: int, fd: int) -> Entry:
        """This entry, attached as a network device."""
        if len(mac) != 6:
            raise ValueError("mac must be 6 bytes")
        u = bytes(mac) + mtu.to_bytes(2, "little") + bytes(8)
        return replace(self, u=u, hostfd=fd, attached=True)

    # --- wire format --------------------------------------------------------
    def to_bytes(self) -> bytes:
        try:
            raw = _name_bytes(self.name)
        except UnicodeEncodeError:
            raise ManifestError(f"invalid device name {self.name!r}") from None
        if len(raw) > abi.MFT_NAME_MAX or b"\x00" in raw:
            raise ManifestError(f"invalid device name {self.name!r}")
        if len(self.u) != 16:
            raise ManifestError("manifest entry union must be 16 bytes")
        e = _cstructs()[1]()
        e.name = raw.ljust(abi.MFT_NAME_SIZE, b"\x00")
        e.type = self.type & 0xFFFFFFFF
        e.u = list(self.u)
        e.b = self.hostfd & 0xFFFFFFFF          # `int hostfd` in the low half
        e.attached = 1 if self.attached else 0
        e.pad = [0] * 7
        out: bytes = e.pack()
        return out


def reserved_entry() -> Entry:
    """Entry 0, which solo5-elftool always emits."""
    return Entry(name="", type=int(abi.DeviceType.RESERVED_FIRST))


@record(frozen=True)
class Manifest:
    """A whole manifest; `entries[0]` is the reserved entry, handle = index."""

    entries: tuple[Entry, ...]

    def devices(self) -> tuple[tuple[int, Entry], ...]:
        """(handle, entry) for every user device (index >= 1)."""
        return tuple((i, e) for i, e in enumerate(self.entries) if i >= 1)

    def find(self, name: str) -> tuple[int, Entry] | None:
        """The first user device called `name`, with its handle."""
        for i, e in self.devices():
            if e.name == name:
                return i, e
        return None

    def handle_of(self, name: str, dtype: int) -> int | None:
        """Handle of device `name` if it is declared with type `dtype`."""
        found = self.find(name)
        return found[0] if found is not None and found[1].type == dtype else None

    def unattached(self) -> tuple[Entry, ...]:
        """User devices the command line left unattached (types at or above
        RESERVED_FIRST are exempt, spec 6.6)."""
        return tuple(e for _, e in self.devices()
                     if not e.attached and e.type < abi.DeviceType.RESERVED_FIRST)

    def guest_copy(self, payload: bytes) -> bytes:
        """The manifest copy for guest memory (spec 3.5): the validated note
        payload byte for byte, with the tender's fields (u, b, attached) of
        attached entries patched in."""
        out = bytearray(payload)
        for handle, e in self.devices():
            if e.attached:
                off = HEADER_SIZE + handle * ENTRY_SIZE
                out[off + 72 : off + 97] = _PATCH.pack(e.u, e.hostfd & 0xFFFFFFFF, 1)
        return bytes(out)

    def replace(self, handle: int, entry: Entry) -> Manifest:
        if not 0 <= handle < len(self.entries):
            raise IndexError(f"no manifest entry {handle}")
        entries = list(self.entries)
        entries[handle] = entry
        return Manifest(tuple(entries))

    def to_bytes(self) -> bytes:
        """`struct mft` as copied into guest memory: 8 + 104*E bytes."""
        h = _cstructs()[0]()
        h.version = abi.MFT_VERSION
        h.entries = len(self.entries)
        head: bytes = h.pack()
        return head + b"".join(e.to_bytes() for e in self.entries)

    def to_json(self) -> str:
        """elftool-style JSON (user devices only)."""
        import json

        devs = [{"name": e.name, "type": e.type_name} for _, e in self.devices()]
        return json.dumps(
            {"type": "solo5.manifest", "version": abi.MFT_VERSION, "devices": devs}, indent=2
        )


# --------------------------------------------------------------------------
# decoding (tender validation rules 1-6)


def decode(payload: bytes, *, reference: bool = False) -> Manifest:
    """Decode and validate an MFT1 note payload (untrusted).

    Any failure raises `ManifestError("Solo5 manifest is invalid")`; the
    caller prefixes the file name. Fields are read with `struct`, or with
    cstruct when `reference` (tooling, and the tests that hold the two to
    the same result).
    """
    try:
        return _decode(bytes(payload), _fields_ref if reference else _fields)
    except ManifestError:
        raise
    except Exception:  # cstruct/struct failure on hostile input
        raise ManifestError(INVALID) from None


# (version, entries) of the header; (name[68], type, u, b, attached) of an entry.
_HeaderFields = tuple[int, int]
_EntryFields = tuple[bytes, int, bytes, int, int]


def _fields(raw: bytes, header: bool) -> _HeaderFields | _EntryFields:
    if header:
        version, entries = abi.MFT_HEADER.unpack(raw)
        return int(version), int(entries)
    name, etype, u, b, attached = _ENTRY.unpack(raw)
    return name, etype, u, b, attached


def _fields_ref(raw: bytes, header: bool) -> _HeaderFields | _EntryFields:
    head_cls, entry_cls = _cstructs()
    if header:
        h = head_cls()
        h.unpack(raw)
        return int(h.version), int(h.entries)
    e = entry_cls()
    e.unpack(raw)
    return raw[0:abi.MFT_NAME_SIZE], int(e.type), bytes(e.u), int(e.b), int(e.attached)


def _decode(payload: bytes, fields: Any) -> Manifest:
    if len(payload) < HEADER_SIZE:                                      # 1
        raise ManifestError(INVALID)
    version, count = fields(payload[:HEADER_SIZE], True)
    if version != abi.MFT_VERSION:                                      # 2
        raise ManifestError(INVALID)
    if count > abi.MFT_MAX_ENTRIES:                                     # 3
        raise ManifestError(INVALID)
    if len(payload) != HEADER_SIZE + ENTRY_SIZE * count:                # 4
        raise ManifestError(INVALID)
    if count < 1:                                                       # 5
        raise ManifestError(INVALID)
    entries: list[Entry] = []
    for i in range(count):
        off = HEADER_SIZE + i * ENTRY_SIZE
        name_raw, etype, u, b, attached = fields(payload[off:off + ENTRY_SIZE], False)
        if i == 0 and (etype != abi.DeviceType.RESERVED_FIRST or name_raw[0] != 0):   # 5
            raise ManifestError(INVALID)
        if name_raw[abi.MFT_NAME_MAX] != 0 or attached != 0:                         # 6
            raise ManifestError(INVALID)
        name = name_raw.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")
        b &= 0xFFFFFFFF
        hostfd = b - (1 << 32) if b & 0x80000000 else b
        entries.append(Entry(name=name, type=etype, u=u, hostfd=hostfd, attached=False))
    return Manifest(tuple(entries))


# --------------------------------------------------------------------------
# JSON source (solo5-elftool rules)


def _json_error(what: str) -> ManifestError:
    return ManifestError(f"invalid manifest: {what}")


def from_json(text: str) -> Manifest:
    """Parse an elftool manifest JSON source into a Manifest (reserved entry
    0 added). Raises ManifestError with a one-line message on any problem."""
    import json

    try:
        doc: Any = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise _json_error(f"not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise _json_error("top level must be an object")
    for key in doc:
        if key not in ("type", "version", "devices"):
            raise _json_error(f"unknown key {key!r}")
    if doc.get("type") != "solo5.manifest":
        raise _json_error('"type" must be "solo5.manifest"')
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise _json_error('"version" must be an integer')
    if version != abi.MFT_VERSION:
        raise _json_error(f'unsupported "version" {version}, expected {abi.MFT_VERSION}')
    if "devices" not in doc:
        raise _json_error('missing "devices"')
    devices = doc["devices"]
    if not isinstance(devices, list):
        raise _json_error('"devices" must be an array')
    if len(devices) > abi.MFT_USER_MAX:
        raise ManifestError(f"too many entries, maximum {abi.MFT_USER_MAX}")
    entries = [reserved_entry()]
    seen: set[str] = set()
    for n, dev in enumerate(devices):
        if not isinstance(dev, dict):
            raise _json_error(f"devices[{n}] must be an object")
        for key in dev:
            if key not in ("name", "type"):
                raise _json_error(f"devices[{n}]: unknown key {key!r}")
        name = dev.get("name")
        if not isinstance(name, str):
            raise _json_error(f'devices[{n}]: "name" must be a string')
        if not (1 <= len(name) <= abi.MFT_NAME_MAX and name.isascii() and name.isalnum()):
            raise _json_error(
                f"devices[{n}]: name {name!r} must be 1..{abi.MFT_NAME_MAX} "
                "alphanumeric characters"
            )
        if name in seen:
            raise _json_error(f"duplicate device name {name!r}")
        seen.add(name)
        tname = dev.get("type")
        if not isinstance(tname, str) or tname not in _TYPES_BY_NAME:
            raise _json_error(
                f'devices[{n}] ({name}): "type" must be "BLOCK_BASIC" or "NET_BASIC"'
            )
        entries.append(Entry(name=name, type=_TYPES_BY_NAME[tname]))
    return Manifest(tuple(entries))


# --------------------------------------------------------------------------
# notes and C source


def _note(note_type: int, align: int, payload: bytes) -> bytes:
    name = abi.NOTE_NAME.ljust(8, b"\x00")
    off = (20 + align - 1) & -align
    pad = bytes(off - 20)
    desc = pad + payload
    body = desc.ljust((len(desc) + 3) & -4, b"\x00")
    nhdr = len(abi.NOTE_NAME).to_bytes(4, "little") + len(desc).to_bytes(4, "little")
    return nhdr + note_type.to_bytes(4, "little") + name + body


def note_bytes(m: Manifest) -> bytes:
    """A complete MFT1 ELF note: Nhdr(namesz 6, descsz 4+8+104E) + name +
    4 padding bytes + the manifest as declared (names and types only; the
    union, hostfd and attached are written as zero, like solo5-elftool)."""
    clean = Manifest(tuple(Entry(name=e.name, type=e.type) for e in m.entries))
    return _note(abi.NOTE_TYPE_MFT, abi.MFT_NOTE_ALIGN, clean.to_bytes())


def abi_note_bytes(target: int = abi.HVT_ABI_TARGET, version: int = abi.HVT_ABI_VERSION) -> bytes:
    """A complete ABI1 ELF note (descsz 16: target, version, 0, 0)."""
    return _note(abi.NOTE_TYPE_ABI, abi.ABI_NOTE_ALIGN,
                 abi.ABI_PAYLOAD.pack(target, version, 0, 0))


def _c_array(symbol: str, section: str, align: int, data: bytes) -> str:
    lines = []
    for i in range(0, len(data), 12):
        lines.append("    " + " ".join(f"0x{b:02x}," for b in data[i:i + 12]))
    body = "\n".join(lines)
    return (
        f'static const unsigned char {symbol}[{len(data)}]\n'
        f'    __attribute__((section("{section}"), aligned({align}), used)) = {{\n'
        f"{body}\n}};\n"
    )


def abi_note_c_source() -> str:
    """C source for the ABI1 note (section .note.solo5.abi, 4-aligned)."""
    return _c_array("solo5_abi1_note", ".note.solo5.abi", abi.ABI_NOTE_ALIGN, abi_note_bytes())


def gen_c_source(m: Manifest) -> str:
    """C source for the MFT1 note (section .note.solo5.manifest, 8-aligned)."""
    names = ", ".join(f"{e.name} ({e.type_name})" for _, e in m.devices()) or "(none)"
    return (
        f"/* Generated by python -m tender.manifest. Do not edit. */\n"
        f"/* Devices: {names} */\n"
        + _c_array("solo5_mft1_note", ".note.solo5.manifest", abi.MFT_NOTE_ALIGN, note_bytes(m))
    )


# --------------------------------------------------------------------------
# CLI

_USAGE = (
    "usage: python -m tender.manifest gen MANIFEST.json OUT.c\n"
    "       python -m tender.manifest dump GUEST.hvt\n"
)
_PROG = "tender.manifest"


def _gen(src: str, out: str) -> None:
    try:
        with open(src, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{src}: {getattr(e, 'strerror', None) or e}") from None
    try:
        m = from_json(text)
    except ManifestError as e:
        raise ManifestError(f"{src}: {e.message}") from None
    source = abi_note_c_source() + "\n" + gen_c_source(m)
    try:
        with open(out, "w", encoding="utf-8") as f:
            f.write(source)
    except OSError as e:
        raise ManifestError(f"{out}: {e.strerror or e}") from None


def _dump(path: str) -> None:
    from tender import elf

    notes = elf.read_notes(elf.read_file(path), path, reference=True)
    try:
        m = decode(notes.manifest_payload, reference=True)
    except ManifestError as e:
        raise ManifestError(f"{path}: {e.message}") from None
    sys.stdout.write(m.to_json() + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if len(args) == 3 and args[0] == "gen":
            _gen(args[1], args[2])
        elif len(args) == 2 and args[0] == "dump":
            _dump(args[1])
        else:
            sys.stderr.write(_USAGE)
            return 1
    except (ManifestError, ElfError) as e:
        sys.stderr.write(f"{_PROG}: {e.message}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
