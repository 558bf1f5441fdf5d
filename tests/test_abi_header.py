"""tender/abi.py against csrc/hvt_abi.h and csrc/hvt_ring.h, the one C
definition of the ABI that the tender's C code and our guests include.

gcc compiles a probe that prints every constant, struct size and field
offset as the C compiler sees them; the test compares them with the Python
side. No KVM needed."""

from __future__ import annotations

import json
import re
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT

from tender import abi

CSRC = ROOT / "csrc"

CONSTANTS = {
    "HVT_ABI_VERSION": abi.HVT_ABI_VERSION, "HVT_ABI_TARGET": abi.HVT_ABI_TARGET,
    "MFT_VERSION": abi.MFT_VERSION, "HVT_GDT_BASE": abi.GDT_BASE,
    "HVT_PML4_BASE": abi.PML4_BASE, "HVT_PDPT_BASE": abi.PDPT_BASE, "HVT_PD_BASE": abi.PD_BASE,
    "HVT_PT0_BASE": abi.PT0_BASE, "HVT_BOOT_INFO_BASE": abi.BOOT_INFO_BASE,
    "HVT_GUEST_MIN_BASE": abi.GUEST_MIN_BASE, "HVT_CMDLINE_SIZE": abi.CMDLINE_SIZE,
    "HVT_FEATURE_RING_IO": abi.HVT_FEATURE_RING_IO, "HC_PIO_BASE": abi.HYPERCALL_PIO_BASE,
    "RING_KICK_PORT": abi.RING_KICK_PORT, "MFT_NAME_SIZE": abi.MFT_NAME_SIZE,
    "MFT_BLOCK_BASIC": abi.DeviceType.BLOCK_BASIC, "MFT_NET_BASIC": abi.DeviceType.NET_BASIC,
    "MFT_RESERVED_FIRST": abi.DeviceType.RESERVED_FIRST, "NOTE_TYPE_ABI": abi.NOTE_TYPE_ABI,
    "NOTE_TYPE_MFT": abi.NOTE_TYPE_MFT, "MFT_MAX_ENTRIES": abi.MFT_MAX_ENTRIES,
    "HALT_COOKIE_MAX": abi.HALT_COOKIE_MAX, "SOLO5_EXIT_ABORT": abi.SOLO5_EXIT_ABORT,
    **{f"HC_{h.name}": int(h) for h in abi.Hypercall},
    **{f"RES_{r.name}": int(r) for r in abi.Result},
}

# C struct -> (abi.py layout, the C field names in the layout's order).
STRUCTS: dict[str, tuple[struct.Struct, tuple[str, ...]]] = {
    "hvt_boot_info": (abi.BOOT_INFO, ("mem_size", "kernel_end", "cpu_cycle_freq", "cmdline",
                                      "mft", "host_features", "guest_features", "net_ring")),
    "hc_walltime": (abi.WALLTIME, ("nsecs",)),
    "hc_puts": (abi.PUTS, ("data", "len")),
    "hc_poll": (abi.POLL, ("timeout_nsecs", "ready_set", "ret")),
    "hc_block": (abi.BLOCK, ("handle", "offset", "data", "len", "ret")),
    "hc_net": (abi.NET, ("handle", "data", "len", "ret")),
    "hc_halt": (abi.HALT, ("cookie", "exit_status")),
    "trap_frame": (abi.TRAP_FRAME, abi.TRAP_FRAME_FIELDS),
    "mft_entry": (abi.MFT_ENTRY, ("name", "type", "u", "b", "attached")),
    "mft": (abi.MFT_HEADER, ("version", "entries")),
}


def py_offsets(layout: struct.Struct) -> list[int]:
    """Field offsets of a little-endian struct format, pad bytes skipped;
    `7Q` is seven fields, `16s` one."""
    fmt = layout.format.lstrip("<")
    offsets, prefix = [], "<"
    for count, code in re.findall(r"(\d*)([a-zA-Z?])", fmt):
        n = int(count or 1)
        if code == "x":
            prefix += f"{n}x"
            continue
        for _ in range(1 if code == "s" else n):
            offsets.append(struct.calcsize(prefix))
            prefix += f"{n}s" if code == "s" else code
    return offsets


@pytest.fixture(scope="module")
def c_side(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    out: Path = tmp_path_factory.mktemp("abi")
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "hvt_abi.h"',
             '#include "hvt_ring.h"', "int main(void) {", 'printf("{");']
    items = [(name, f"(unsigned long long)({name})") for name in CONSTANTS]
    items.append(("RING_STRUCT_SIZE", "sizeof(struct hvt_ring)"))
    for cname, (_, fields) in STRUCTS.items():
        items.append((f"sizeof {cname}", f"sizeof(struct {cname})"))
        items += [(f"{cname}.{f}", f"offsetof(struct {cname}, {f})") for f in fields]
    for key, expr in items:
        lines.append(f'printf("\\"{key}\\": %llu, ", (unsigned long long)({expr}));')
    lines += ['printf("\\"end\\": 0}\\n");', "return 0; }"]
    src = out / "probe.c"
    src.write_text("\n".join(lines))
    subprocess.run(["gcc", "-std=gnu11", "-Wall", "-Werror", f"-I{CSRC}", "-o",
                    str(out / "probe"), str(src)], check=True)
    got: dict[str, int] = json.loads(subprocess.run([str(out / "probe")], check=True,
                                                    capture_output=True, text=True).stdout)
    return got


@pytest.mark.parametrize("name", sorted(CONSTANTS))
def test_constant_matches_the_header(c_side: dict[str, int], name: str) -> None:
    assert c_side[name] == CONSTANTS[name]


@pytest.mark.parametrize("cname", sorted(STRUCTS))
def test_struct_layout_matches_the_header(c_side: dict[str, int], cname: str) -> None:
    layout, fields = STRUCTS[cname]
    assert c_side[f"sizeof {cname}"] == layout.size
    assert [c_side[f"{cname}.{f}"] for f in fields] == py_offsets(layout)


def test_block_ret_offset_matches_the_header(c_side: dict[str, int]) -> None:
    """The handlers write BLOCK's result at this offset, without repacking."""
    assert c_side["hc_block.ret"] == abi.BLOCK_RET_OFFSET


def test_ring_size_matches_the_header(c_side: dict[str, int]) -> None:
    assert c_side["RING_STRUCT_SIZE"] == abi.RING_STRUCT_SIZE


def test_every_hypercall_has_a_c_name() -> None:
    text = (CSRC / "hvt_abi.h").read_text()
    assert all(f"HC_{h.name} = {int(h)}," in text for h in abi.Hypercall)


def test_trace_field_names_are_the_headers(c_side: dict[str, int]) -> None:
    """The module table's trace field names (tender/modules/) are the C
    struct's own fields, in the same order and at the same offsets."""
    from tender import modules

    by_layout = {id(layout): (cname, fields) for cname, (layout, fields) in STRUCTS.items()}
    for nr, tf in modules.trace_fields().items():
        cname, fields = by_layout[id(tf.layout)]
        assert tf.names == fields, (nr, cname)
        assert [c_side[f"{cname}.{f}"] for f in tf.names] == py_offsets(tf.layout)
