#!/usr/bin/env python3
"""Structural checks of built guests (HVT_SPEC.md 2): `make -C guests check`.

For each .hvt: ET_EXEC x86-64, entry >= 0x100000, PT_LOADs page aligned,
ascending and non-overlapping, none W+X, text PF_X only, a filesz-0 BSS
PT_LOAD, and two PT_NOTEs each starting with its Solo5 note (ABI1 with
target 1 / version 2, MFT1 with a valid MFT v1 payload).
"""
import struct
import sys

PT_LOAD, PT_NOTE, PT_INTERP = 1, 4, 3
PF_X, PF_W, PF_R = 1, 2, 4


def check(path):
    errs = []
    data = open(path, "rb").read()
    (ident, e_type, e_machine, e_version, e_entry, e_phoff, _shoff, _flags,
     e_ehsize, e_phentsize, e_phnum) = struct.unpack_from("<16sHHIQQQIHHH", data)
    if ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
        errs.append("bad ident")
    if e_type != 2 or e_machine != 62 or e_version != 1:
        errs.append("not ET_EXEC x86-64")
    if e_ehsize != 64 or e_phentsize != 56:
        errs.append("bad header sizes")
    if e_entry < 0x100000:
        errs.append("entry 0x%x < 0x100000" % e_entry)
    phs = [struct.unpack_from("<IIQQQQQQ", data, e_phoff + 56 * i) for i in range(e_phnum)]
    end = 0
    last = 0
    text_seen = bss_seen = False
    notes = {}
    interp = None
    for i, (p_type, p_flags, p_offset, p_vaddr, _pa, p_filesz, p_memsz, p_align) in enumerate(phs):
        if p_type == PT_INTERP:
            interp = data[p_offset:p_offset + p_filesz]
        if p_type == PT_LOAD:
            if p_align != 0x1000:
                errs.append("phdr %d: p_align 0x%x" % (i, p_align))
            start = p_vaddr & ~0xFFF
            aend = (p_vaddr + p_memsz + 0xFFF) & ~0xFFF
            if p_vaddr != start:
                errs.append("phdr %d: vaddr 0x%x not page aligned" % (i, p_vaddr))
            if p_vaddr < 0x100000 or p_vaddr < last or start < end:
                errs.append("phdr %d: order/overlap/min address" % i)
            if p_flags & PF_W and p_flags & PF_X:
                errs.append("phdr %d: W+X" % i)
            if p_filesz > p_memsz:
                errs.append("phdr %d: filesz > memsz" % i)
            if p_flags & PF_X:
                text_seen = True
                if p_flags != PF_X:
                    errs.append("phdr %d: text flags 0x%x, want PF_X only" % (i, p_flags))
                if p_vaddr > e_entry or e_entry >= p_vaddr + p_memsz:
                    errs.append("entry not in text")
            if p_filesz == 0 and p_memsz > 0:
                bss_seen = True
            last = p_vaddr
            end = max(end, aend)
        if p_type == PT_NOTE:
            namesz, descsz, ntype = struct.unpack_from("<III", data, p_offset)
            name = data[p_offset + 12:p_offset + 20]
            if namesz == 6 and name == b"Solo5\0\0\0":
                if p_filesz < 20 + descsz:
                    errs.append("phdr %d: note truncated" % i)
                notes[ntype] = (p_offset, descsz)
    if not text_seen:
        errs.append("no PF_X PT_LOAD")
    if not bss_seen:
        errs.append("no filesz-0 BSS PT_LOAD")
    if interp != b"/nonexistent/solo5/\0":
        errs.append("PT_INTERP %r" % interp)
    abi = notes.get(0x31494241)
    mft = notes.get(0x3154464D)
    if abi is None or mft is None:
        errs.append("missing Solo5 note(s)")
    else:
        off, descsz = abi
        target, version = struct.unpack_from("<II", data, off + 20)
        if (target, version, descsz) != (1, 2, 16):
            errs.append("ABI1 note: target %d version %d descsz %d" % (target, version, descsz))
        off, descsz = mft
        payload = data[off + 24:off + 20 + descsz]
        ver, n = struct.unpack_from("<II", payload)
        if ver != 1 or len(payload) != 8 + 104 * n or not 1 <= n <= 64:
            errs.append("MFT1 note: bad header/size")
        else:
            ents = [struct.unpack_from("<68sI16sQ?7x", payload, 8 + 104 * k) for k in range(n)]
            if ents[0][1] != 0x40000000 or ents[0][0][0] != 0:
                errs.append("MFT1 note: entry 0 not reserved")
            if any(e[4] or e[0][67] for e in ents):
                errs.append("MFT1 note: attached set or name unterminated")
    return errs


def main():
    bad = 0
    for path in sys.argv[1:]:
        errs = check(path)
        print("%-28s %s" % (path, "ok" if not errs else "; ".join(errs)))
        bad |= bool(errs)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
