"""--dumpcore=DIR (spec 6.3): real guests on real KVM through the CLI; the
cores are checked by structure and by loading them into real gdb."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import guest, require_kvm, run_tender

pytestmark = pytest.mark.usefixtures("kvm")

CORE_LINE = re.compile(r"^pytender: dumpcore: dumping guest core to: (\S*core\.solo5-hvt\.[0-9]*)$",
                       re.M)
DUMPED = re.compile(r"^pytender: dumpcore: dumped (\d+) pages of total (\d+) pages$", re.M)
MEM = 512 << 20
PAGES = MEM // 4096
MEM_OFFSET = 532


def _dump(tmp_path: Path, name: str, *args: str) -> tuple[str, Path]:
    r = run_tender(f"--dumpcore={tmp_path}", guest(name), *args)
    assert r.status == 255, r.output
    m = CORE_LINE.search(r.err)
    assert m, r.err
    core = Path(m[1])
    assert core.parent == tmp_path and core.exists()
    d = DUMPED.search(r.err)
    assert d and int(d[2]) == PAGES and 0 < int(d[1]) < PAGES // 10, r.err
    return r.out, core


def _prstatus_regs(core: bytes) -> dict[str, int]:
    names = ("r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax "
             "rip cs eflags rsp ss fs_base gs_base ds es fs gs").split()
    vals = struct.unpack_from("<27Q", core, 176 + 20 + 112)
    return dict(zip(names, vals, strict=True))


def test_exception_core_structure_and_trap_frame(tmp_path: Path) -> None:
    out, core = _dump(tmp_path, "exception")
    st = core.stat()
    assert st.st_size == MEM_OFFSET + MEM
    assert st.st_blocks * 512 < st.st_size // 50          # sparse
    assert st.st_mode & 0o777 == 0o600
    data = core.read_bytes()[:MEM_OFFSET]
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1 and data[7] == 255
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    assert (e_type, e_machine, phoff, phentsize, phnum) == (4, 62, 64, 56, 2)
    note = struct.unpack_from("<IIQQQQQQ", data, 64)
    load = struct.unpack_from("<IIQQQQQQ", data, 120)
    assert note[0] == 4 and note[2] == 176 and note[5] == note[6] == 356
    assert load[0] == 1 and load[2] == MEM_OFFSET and load[3] == 0 and load[5] == load[6] == MEM
    assert struct.unpack_from("<III", data, 176) == (8, 336, 1)
    assert data[188:196] == b"CORE\0\0\0\0"
    # rip/rsp come from the guest's trap frame, as the guest printed them
    m = re.search(r"trap: #PF \(vec 14\) rip=(0x[0-9a-f]+) .* rsp=(0x[0-9a-f]+)", out)
    assert m, out
    regs = _prstatus_regs(data)
    assert regs["rip"] == int(m[1], 16) and regs["rsp"] == int(m[2], 16)
    assert regs["cs"] == 0x8 and regs["orig_rax"] == (1 << 64) - 1


def test_core_memory_matches_guest_text(tmp_path: Path) -> None:
    _, core = _dump(tmp_path, "abort")
    # the first PT_LOAD of the guest ELF (.text) must be in the core at its GPA
    elf = Path(guest("abort")).read_bytes()
    phoff, = struct.unpack_from("<Q", elf, 32)
    _, phnum = struct.unpack_from("<HH", elf, 54)
    for i in range(phnum):
        p_type, p_flags, p_off, p_vaddr, _, p_filesz, _, _ = struct.unpack_from(
            "<IIQQQQQQ", elf, phoff + 56 * i)
        if p_type == 1 and p_flags & 1 and p_filesz:
            with core.open("rb") as f:
                f.seek(MEM_OFFSET + p_vaddr)
                assert f.read(p_filesz) == elf[p_off : p_off + p_filesz]
            return
    pytest.fail("no executable PT_LOAD in the guest")


@pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb not installed")
@pytest.mark.parametrize(("name", "frames"), [
    ("exception", ("app_main", "exception/main.c", "rt_main")),
    ("abort", ("rt_halt", "abort", "app_main", "abort/main.c")),
])
def test_gdb_loads_core(tmp_path: Path, name: str, frames: tuple[str, ...]) -> None:
    _, core = _dump(tmp_path, name)
    r = subprocess.run(["gdb", "-batch", "-nx", "-ex", "info registers rip", "-ex", "bt",
                        guest(name), str(core)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^rip\s+0x10[0-9a-f]+\s+0x10[0-9a-f]+ <", r.stdout, re.M), r.stdout
    bt = r.stdout[r.stdout.index("#0"):]
    for frame in frames:
        assert frame in bt, r.stdout


def test_no_core_unless_abort(tmp_path: Path) -> None:
    r = run_tender(f"--dumpcore={tmp_path}", guest("hello"), "Hello_Solo5")
    assert r.status == 0 and "SUCCESS" in r.out
    assert "dumpcore" not in r.err and list(tmp_path.iterdir()) == []
    r = run_tender(f"--dumpcore={tmp_path}", guest("exit"), "exit 3")
    assert r.status == 3 and list(tmp_path.iterdir()) == []


def test_missing_dir_fails_before_the_guest_runs(tmp_path: Path) -> None:
    r = run_tender(f"--dumpcore={tmp_path / 'nope'}", guest("abort"))
    assert r.status == 1
    assert r.stdout == b""
    assert r.err.splitlines() == [
        f"pytender: dumpcore: cannot open dir: {tmp_path / 'nope'}: No such file or directory"]


def test_file_is_not_a_dir(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_bytes(b"")
    r = run_tender(f"--dumpcore={f}", guest("abort"))
    assert r.status == 1 and r.stdout == b""
    assert r.err.startswith("pytender: dumpcore: cannot open dir") and r.err.count("\n") == 1


def _unwritable_dir(tmp_path: Path) -> str | None:
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    if not os.access(d, os.W_OK):
        return str(d)
    # root ignores modes; a read-only mount still counts
    for cand in ("/proc/sys", "/sys/fs"):
        if os.path.isdir(cand) and not os.access(cand, os.W_OK):
            return cand
    return None


def test_unwritable_dir(tmp_path: Path) -> None:
    require_kvm()
    d = _unwritable_dir(tmp_path)
    if d is None:
        pytest.skip("no unwritable directory available to this user")
    r = run_tender(f"--dumpcore={d}", guest("abort"))
    assert r.status == 1 and r.stdout == b""
    assert r.err.splitlines() == [f"pytender: dumpcore: dir not writable: {d}"]
