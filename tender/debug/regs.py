"""Pure: the x86-64 register file as gdb sees it, and its target description.

We send gdb an explicit target description (qXfer:features:read), so the
`g` packet layout is the one defined here and not gdb's guess. All sixteen
GPRs are real (upstream sends r12-r15 as zero)."""

from __future__ import annotations

from dataclasses import dataclass

GPRS = ("rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15").split()
SEGS = ("cs", "ss", "ds", "es", "fs", "gs")
FPU_CTRL = ("fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop")


@dataclass(frozen=True)
class RegDef:
    name: str
    size: int        # bytes in the g packet
    gdb_type: str
    group: str = ""


def _defs() -> tuple[RegDef, ...]:
    regs = [RegDef(n, 8, "data_ptr" if n in ("rbp", "rsp") else "int64") for n in GPRS]
    regs.append(RegDef("rip", 8, "code_ptr"))
    regs.append(RegDef("eflags", 4, "i386_eflags"))
    regs += [RegDef(s, 4, "int32") for s in SEGS]
    regs += [RegDef(f"st{i}", 10, "i387_ext") for i in range(8)]
    regs += [RegDef(n, 4, "int", "float") for n in FPU_CTRL]
    regs += [RegDef(f"xmm{i}", 16, "vec128") for i in range(16)]
    regs.append(RegDef("mxcsr", 4, "i386_mxcsr", "vector"))
    regs += [RegDef("fs_base", 8, "int"), RegDef("gs_base", 8, "int")]
    return tuple(regs)


REGS = _defs()
REG_INDEX = {r.name: i for i, r in enumerate(REGS)}
G_SIZE = sum(r.size for r in REGS)
_FEATURE_OF = (
    [("org.gnu.gdb.i386.core", r) for r in REGS[:REG_INDEX["xmm0"]]]
    + [("org.gnu.gdb.i386.sse", r) for r in REGS[REG_INDEX["xmm0"]:REG_INDEX["fs_base"]]]
    + [("org.gnu.gdb.i386.segments", r) for r in REGS[REG_INDEX["fs_base"]:]]
)

_EFLAGS = ("CF:0 PF:2 AF:4 ZF:6 SF:7 TF:8 IF:9 DF:10 OF:11 NT:14 RF:16 VM:17 AC:18 "
           "VIF:19 VIP:20 ID:21")
_MXCSR = "IE:0 DE:1 ZE:2 OE:3 UE:4 PE:5 DAZ:6 IM:7 DM:8 ZM:9 OM:10 UM:11 PM:12 FZ:15"


def _flags(ident: str, spec: str) -> str:
    fields = []
    for item in spec.split():
        name, bit = item.split(":")
        fields.append(f'<field name="{name}" start="{bit}" end="{bit}"/>')
    return f'<flags id="{ident}" size="4">{"".join(fields)}</flags>'


_TYPES = {
    "org.gnu.gdb.i386.core": _flags("i386_eflags", _EFLAGS),
    "org.gnu.gdb.i386.sse": (
        '<vector id="v4f" type="ieee_single" count="4"/>'
        '<vector id="v2d" type="ieee_double" count="2"/>'
        '<vector id="v16i8" type="int8" count="16"/>'
        '<vector id="v8i16" type="int16" count="8"/>'
        '<vector id="v4i32" type="int32" count="4"/>'
        '<vector id="v2i64" type="int64" count="2"/>'
        '<union id="vec128"><field name="v4_float" type="v4f"/>'
        '<field name="v2_double" type="v2d"/><field name="v16_int8" type="v16i8"/>'
        '<field name="v8_int16" type="v8i16"/><field name="v4_int32" type="v4i32"/>'
        '<field name="v2_int64" type="v2i64"/><field name="uint128" type="uint128"/></union>'
        + _flags("i386_mxcsr", _MXCSR)
    ),
    "org.gnu.gdb.i386.segments": "",
}


def target_xml() -> bytes:
    parts = ['<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd">',
             '<target version="1.0"><architecture>i386:x86-64</architecture>']
    current = ""
    for regnum, (feature, reg) in enumerate(_FEATURE_OF):
        if feature != current:
            if current:
                parts.append("</feature>")
            parts.append(f'<feature name="{feature}">{_TYPES[feature]}')
            current = feature
        group = f' group="{reg.group}"' if reg.group else ""
        parts.append(f'<reg name="{reg.name}" bitsize="{reg.size * 8}" '
                     f'type="{reg.gdb_type}" regnum="{regnum}"{group}/>')
    parts.append("</feature></target>")
    return "".join(parts).encode()


# --- x87 tag word: FpuRegs keeps the FXSAVE "abridged" form (1 bit per register);
# gdb wants the full 2-bit form, derived from each register's contents.
def full_ftag(abridged: int, fsw: int, st: list[bytes]) -> int:
    top = (fsw >> 11) & 7
    tag = 0
    for phys in range(8):
        if not abridged & (1 << phys):
            t = 3                                   # empty
        else:
            raw = st[(phys - top) & 7]
            mant = int.from_bytes(raw[:8], "little")
            exp = int.from_bytes(raw[8:10], "little") & 0x7FFF
            if exp == 0x7FFF:
                t = 2                               # special (inf/NaN)
            elif exp == 0:
                t = 1 if mant == 0 else 2           # zero / denormal
            else:
                t = 0 if mant >> 63 else 2          # valid / unnormal
        tag |= t << (2 * phys)
    return tag


def abridged_ftag(full: int) -> int:
    return sum(1 << i for i in range(8) if (full >> (2 * i)) & 3 != 3)


@dataclass(frozen=True)
class RegFile:
    """One snapshot of every register in the `g` packet, by name. Values are
    ints except st0-7 and xmm0-15, which are raw little-endian bytes."""

    values: tuple[tuple[str, int | bytes], ...]

    def get(self, name: str) -> int | bytes:
        return dict(self.values)[name]

    def encode(self) -> bytes:
        out = bytearray()
        for reg, (_, value) in zip(REGS, self.values, strict=True):
            out += _to_bytes(reg, value)
        return bytes(out)

    @staticmethod
    def decode(block: bytes) -> RegFile:
        if len(block) != G_SIZE:
            raise ValueError(f"register block is {len(block)} bytes, want {G_SIZE}")
        vals: list[tuple[str, int | bytes]] = []
        off = 0
        for reg in REGS:
            vals.append((reg.name, from_bytes(reg, block[off : off + reg.size])))
            off += reg.size
        return RegFile(tuple(vals))

    def replace(self, name: str, value: int | bytes) -> RegFile:
        return RegFile(tuple((n, value if n == name else v) for n, v in self.values))


def _to_bytes(reg: RegDef, value: int | bytes) -> bytes:
    if isinstance(value, bytes):
        return value[: reg.size].ljust(reg.size, b"\0")
    return (value & ((1 << (8 * reg.size)) - 1)).to_bytes(reg.size, "little")


def from_bytes(reg: RegDef, raw: bytes) -> int | bytes:
    if len(raw) != reg.size:
        raise ValueError(f"{reg.name} takes {reg.size} bytes")
    if reg.gdb_type in ("i387_ext", "vec128"):
        return bytes(raw)
    return int.from_bytes(raw, "little")


def encode_one(name: str, value: int | bytes) -> bytes:
    return _to_bytes(REGS[REG_INDEX[name]], value)

