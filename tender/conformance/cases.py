"""The conformance cases: our guests' edge cases, with the outcome
HVT_SPEC.md prescribes (section numbers in the comments). Pure data.

Cases marked `pytender_only` check a deliberate difference from solo5-hvt
(README, "Differences from solo5-hvt") or need a pytender-only option;
`--tender` skips them."""

from __future__ import annotations

from tender.conformance.model import MEM, Case, Echo, Expect, Kernel

FAILED = "FAILURE"


def _ok(*out: str) -> Expect:
    return Expect(0, out=("SUCCESS", *out), out_not=(FAILED,))


def _abort(*out: str) -> Expect:
    return Expect(255, out=("ABORT", *out))


def _fatal(*err: str) -> Expect:
    """A tender error (spec conventions): exit 1, the message on stderr, and
    the guest never got to report that it survived."""
    return Expect(1, err=err, out_not=(FAILED,))


def _4k_output() -> str:
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/"
    return "".join("".join(alphabet[(line + i) % 64] for i in range(63)) + "\n"
                   for line in range(64))


# --- start-up, argv and the memory map (spec 1, 3) ------------------------------
START = [
    Case("hello", "hello", _ok("Hello, World"), args=("Hello_Solo5",)),
    # The tender never speaks as the guest (spec 10: its prefix is not `Solo5:`).
    Case("tender-never-says-solo5", "hello",
         Expect(0, out_not=("Solo5:",), err_not=("Solo5:",)), args=("Hello_Solo5",)),
    Case("cmdline-joined-by-spaces", "hello",
         Expect(1, out=('FAILURE: command line is "Hello Solo5"',)), args=("Hello", "Solo5")),
    Case("options-after-kernel-go-to-guest", "hello",
         Expect(1, out=('command line is "--help --mem=2"',), err_not=("usage:",)),
         args=("--help", "--mem=2")),
    Case("double-dash-then-quiet", "quiet", Expect(0, out_exact="SUCCESS\n"),
         opts=(MEM, "--"), args=("--solo5:quiet",)),
    Case("puts-4096-bytes-once", "output", Expect(0, out_end=_4k_output())),
    Case("globals", "globals", _ok()),
    Case("tls", "tls", _ok()),
    # Boot info, manifest copy at 0x10038, command line, FS base, stack at
    # M-8 (spec 3.2, 3.5, 3.6), checked from inside the guest.
    Case("boot-info-and-memory-map", "rtcheck", _ok('rtcheck: cmdline "a b"'), args=("a", "b")),
    Case("mem-4096-is-allowed", "hello", _ok("mem=0x100000000"),
         opts=("--mem=4096",), args=("Hello_Solo5",)),
    Case("mem-rounded-down-to-2mib", "hello",
         Expect(0, out=("mem=0x200000 ",), err=("adjusting memory to 2097152 bytes",)),
         opts=("--mem=3",), args=("Hello_Solo5",)),
    Case("mem-zero-is-malformed", "hello", _fatal("Malformed argument to --mem"),
         opts=("--mem=0",), args=("Hello_Solo5",)),
    Case("mem-above-4gib", "hello", _fatal("exceeds the max size"),
         opts=("--mem=4098",), args=("Hello_Solo5",)),
    Case("version-exits-0", Kernel.NONE, Expect(0), opts=("--version",)),
    Case("help-exits-1", Kernel.NONE, Expect(1, err=("usage:",)), opts=("--help",)),
    Case("missing-kernel-operand", Kernel.NONE, _fatal("Missing KERNEL operand")),
    Case("kernel-not-elf", Kernel.NOT_ELF, _fatal(
        "invalid executable: invalid or unsupported executable "
        "(elf header invalid while loading note)")),
    Case("unknown-option", "hello", _fatal("Invalid option"), opts=(MEM, "--bogus")),
    Case("net-declared-not-attached", "net",
         _fatal("Device 'service0' of type NET_BASIC declared but not attached."),
         args=("info",)),
    Case("block-declared-not-attached", "blk",
         _fatal("Device 'storage' of type BLOCK_BASIC declared but not attached.")),
    # The name is checked when the option is parsed, before any tap is opened.
    Case("net-name-not-in-manifest", "net",
         _fatal("Resource not declared in manifest: 'nosuch'", "Invalid option"),
         opts=(MEM, "--net:nosuch=tap0"), args=("info",)),
]

# --- HALT: statuses and cookies (spec 4.4) ---------------------------------------
HALT = [
    *(Case(f"halt-status-{arg}", "exit", Expect(status), args=(arg,))
      for arg, status in (("0", 0), ("7", 7), ("255", 255), ("256", 0), ("-2", 254))),
    # Traps halt with 255 and a cookie pointing at the trap frame.
    Case("abort-page-fault-unmapped", "exception", _abort("#PF")),
    Case("abort-page-fault-zero-page", "zeropage", _abort("#PF")),
    Case("abort-fs-base-zero", "notls", _abort("#PF")),
    Case("abort-stack-protector", "ssp", _abort("Stack corruption detected")),
    Case("abort-no-cookie", "abort", _abort()),
    Case("halt-cookie-out-of-range", "hostile",
         _fatal("Invalid guest access: gpa=0x3ffff9c, sz=512"), args=("halt-cookie-oob",)),
]

# --- PUTS, POLL, WALLTIME and the checked guest address (spec 4.3, 4.4) ----------
CORE = [
    Case("puts-last-byte-of-ram", "hostile",
         _fatal("Invalid guest access: gpa=0x3ffffff, sz=1"), args=("puts-oob",)),
    Case("puts-length-2-63", "hostile", _fatal("Invalid guest access: gpa=0x"),
         args=("puts-huge",)),
    Case("puts-address-wraps", "hostile",
         _fatal("Invalid guest access: gpa=0xffffffffffff0000, sz=131072"),
         args=("puts-wrap",)),
    Case("arg-struct-beyond-ram", "hostile",
         _fatal("Invalid guest access: gpa=0x4001000, sz=16"), args=("arg-oob",)),
    Case("arg-struct-ends-at-last-byte", "hostile",
         _fatal("Invalid guest access: gpa=0x3fffff0, sz=16"), args=("arg-last",)),
    Case("puts-from-page-tables-is-a-read", "hostile", _ok(), args=("pagetables",)),
    Case("poll-zero-timeout", "hostile", _ok("ready_set 0x0"), args=("poll-zero",)),
    # 5 x 1 s yields, each 0.8-1.2 s, and a walltime after 2017 (spec 10, time).
    Case("poll-timeouts-and-walltime", "time", _ok()),
    # pytender: host writes into the guest's read-only segments are refused
    # (upstream writes through a read-only host mapping and crashes).
    Case("walltime-into-text-refused", "hostile", _fatal("Invalid guest access: gpa=0x"),
         args=("walltime-ro",), pytender_only="host writes into read-only segments refused"),
]

# --- ports, sizes, directions, hypercall numbers (spec 4.1, 4.5) ------------------
PORTS = [
    Case("hypercall-number-0", "hostile", _fatal("Invalid guest hypercall: num=0"),
         args=("bad-nr",)),
    Case("port-0x509", "hostile", _fatal("Invalid guest port access: port=0x509"),
         args=("bad-nr9",)),
    Case("port-direction-in", "hostile", _fatal("Invalid guest port access: port=0x502"),
         args=("port-in",)),
    Case("port-size-2", "hostile", _fatal("Invalid guest port access: port=0x502"),
         args=("port-size",)),
    Case("port-far", "hostile", _fatal("Invalid guest port access: port=0x1234"),
         args=("port-far",)),
    Case("block-hypercall-without-block-module", "hostile",
         _fatal("Invalid guest hypercall: num=5"), args=("block-nodev",)),
    Case("triple-fault", "hostile",
         Expect(1, out_not=(FAILED,), err_any=("KVM: unhandled exit: exit_reason=0x8, rip=0x",
                                               "KVM: internal error exit: suberror=0x")),
         args=("triple-fault",)),
]

# --- W^X and read-only segments (spec 2.3, 8.3) ------------------------------------
# On hardware KVM a write to host-read-only guest memory is EFAULT, a
# translation fault; on kvm_pvm (spec 12, item 12) upstream reports the MMIO
# exit instead. Either is a refused write.
_REFUSED_WRITE = Expect(1, out_not=("FAILURE: write succeeded",),
                        err_any=("KVM: host/guest translation fault: rip=0x",
                                 "KVM: unhandled exit: exit_reason=0x6"))
_TRANSLATION_FAULT = _fatal("KVM: host/guest translation fault: rip=0x")
WX = [
    Case("write-to-text-refused", "wtext", _REFUSED_WRITE),
    Case("write-to-rodata-refused", "wrodata", _REFUSED_WRITE),
    Case("write-to-text-is-translation-fault", "wtext", _TRANSLATION_FAULT,
         pytender_only="an MMIO write exit is reported as a translation fault"),
    Case("write-to-rodata-is-translation-fault", "wrodata", _TRANSLATION_FAULT,
         pytender_only="an MMIO write exit is reported as a translation fault"),
    # x86 paging has no execute-only pages: reading text is allowed everywhere.
    Case("read-text-allowed", "wx", Expect(0, out=("victim(1) = 4",), out_not=(FAILED,)),
         args=("rdtext",)),
    # W^X (README "W^X, CPUID and MSRs"): an NX fetch is the guest's own #PF,
    # classified from its trap frame; writes that bypass the guest's page
    # tables hit the read-only memslot. Upstream cannot enforce execute
    # permission on Linux (spec 8.3), hence pytender-only.
    *(Case(f"wx-{mode}-stopped", "wx", Expect(1, err=("KVM: host/guest translation fault: rip=0x",),
                                               out_not=(FAILED, "wx: NOT STOPPED")),
           args=(mode,), pytender_only="W^X enforced in the guest on Linux")
      for mode in ("xrodata", "xdata", "xstack", "xheap", "wbootinfo", "wpwp", "wpt", "wgdt")),
    Case("wx-off-executes-data", "wx", Expect(3, out=("wx: NOT STOPPED: xdata",)),
         opts=(MEM, "--wx=off"), args=("xdata",), pytender_only="the --wx=off option"),
    # The MSR filter: EFER (NXE) cannot be rewritten, kvmclock cannot be read.
    Case("msr-efer-write-refused", "wx", _abort("GUEST: trap: #GP"), args=("nxe",),
         pytender_only="MSR filter (deny by default)"),
    Case("msr-kvmclock-read-refused", "cpu", _abort("GUEST: trap: #GP"),
         args=("rdmsr", "0x4b564d01"), pytender_only="MSR filter (deny by default)"),
]

# --- block (spec 4.4, 6.2) ------------------------------------------------------------
_BLK = ("--block:storage={img0}",)
BLOCK = [
    # Last sector, EINVAL past capacity, crossing the end, huge lengths and
    # offsets, handles 0 / entries / 2^63 / 2^32+1, bindings-style checks.
    # The tender checks bounds, not alignment (spec 4.4): many sectors in
    # one request work, and so does a zero-length request.
    Case("block-bounds-and-handles-512", "blk",
         _ok("blk: verified 32 sectors", "multi-sector: OK", "zero-length raw read: OK"),
         opts=(MEM, *_BLK), args=("full", "0", "multi"), images=(32 * 512,)),
    Case("block-bounds-and-handles-4096", "blk", _ok("blk: verified 32 sectors"),
         opts=(MEM, *_BLK, "--block-sector-size:storage=4096"), args=("full", "1"),
         images=(32 * 4096,)),
    Case("block-misaligned-request-einval", "blk",
         _ok("misaligned raw read (offset 1): EINVAL", "multi-sector: OK"),
         opts=(MEM, *_BLK), args=("full", "0", "multi"), images=(16 * 512,),
         pytender_only="EINVAL for misaligned block requests"),
    Case("block-handle-0", "hostileblk", _ok("read ret 2, write ret 2"),
         opts=(MEM, *_BLK), args=("block-nodev",), images=(8 * 512,)),
    Case("block-handle-2-63", "hostileblk", _ok("read ret 2, write ret 2"),
         opts=(MEM, *_BLK), args=("block-hugehandle",), images=(8 * 512,)),
    Case("block-two-devices", "blk2", _ok(),
         opts=(MEM, "--block:disk0={img0}", "--block:disk1={img1}",
               "--block-sector-size:disk1=4096"), images=(16 * 512, 8 * 4096)),
    Case("block-63-devices", "mft63", _ok(),
         opts=(MEM, *(f"--block:storage{i}={{img{i}}}" for i in range(63))),
         images=(4096,) * 63),
    Case("block-image-not-aligned", "blk",
         _fatal("storage: Backing storage size must be block aligned (4096 bytes)"),
         opts=(MEM, *_BLK, "--block-sector-size:storage=4096"), images=(6 * 1024,)),
    Case("block-image-empty", "blk",
         _fatal("storage: Backing storage must be at least 1 block (512 bytes) in size"),
         opts=(MEM, *_BLK), images=(0,)),
    *(Case(f"block-sector-size-{bs}", "blk",
           _fatal("Block size must be a multiple of 2 greater than or equal 512"),
           opts=(MEM, *_BLK, f"--block-sector-size:storage={bs}"), images=(size,))
      for bs, size in ((521, 1563), (256, 256), (70000, 4096))),
    Case("block-name-not-in-manifest", "blk",
         _fatal("Resource not declared in manifest: 'other'"),
         opts=(MEM, "--block:other={img0}"), images=(4096,)),
    Case("block-image-missing", "blk", _fatal("Could not open block device"),
         opts=(MEM, "--block:storage=/nonexistent/pytender-conformance.img")),
]

# --- net over a FramePipe (spec 4.4, 5) ------------------------------------------
# All net cases attach a SOCK_SEQPACKET socket as --net:NAME=@FD, which
# upstream cannot (spec 12, item 8), so they are pytender-only.
_AT_FD = "--net:NAME=@FD (upstream always fails it)"
_NET = ("--net:service0={pipe0}",)
NET = [
    Case("net-info-mac-and-mtu", "net", _ok("NET: service0 handle 1 mac ", "MTU is 1500"),
         opts=(MEM, *_NET), args=("info",), pipes=(Echo(),), pytender_only=_AT_FD),
    # POLL wakes for each frame; NET_READ / NET_WRITE carry it.
    Case("net-echo", "net", _ok("NET: service0 answered 30 echo requests"),
         opts=(MEM, *_NET), args=("10.0.0.2", "limit", "30"), pipes=(Echo(count=30),),
         pytender_only=_AT_FD),
    Case("net-echo-hypercalls-only", "net",
         _ok("NET: ring inactive", "NET: service0 answered 10 echo requests"),
         opts=(MEM, "--net-ring=off", *_NET), args=("10.0.0.2", "limit", "10"),
         pipes=(Echo(count=10),), pytender_only=_AT_FD),
    # 8042-byte frames: beyond the ring's 2 KiB slots, so NET_WRITE even with
    # the ring; the tender does not check the MTU (spec 4.4).
    Case("net-frames-beyond-mtu", "net", _ok("answered 5 echo requests"),
         opts=(MEM, *_NET), args=("10.0.0.2", "limit", "5"),
         pipes=(Echo(count=5, payload=8000),), pytender_only=_AT_FD),
    # Two devices: POLL's ready set names the handle that has a frame.
    Case("net-two-devices-ready-set", "net2",
         _ok("NET: service0 handle 1 ", "NET: service1 handle 2 ",
             "service0 answered 10 echo requests", "service1 answered 10 echo requests"),
         opts=(MEM, *_NET, "--net:service1={pipe1}"),
         args=("10.0.0.2", "10.1.0.2", "limit", "10"),
         pipes=(Echo(count=10), Echo(ip="10.1.0.2", count=10)), pytender_only=_AT_FD),
    # Raw NET_WRITE / NET_READ hypercalls (4.4): bad handles, nothing queued,
    # bad pointers; the hypercall path in every handler mode.
    Case("net-bad-handles-einval", "net", _ok("handle 0x100000001: write ret 2, read ret 2"),
         opts=(MEM, *_NET), args=("hc-hostile", "bad-handle"), pipes=(Echo(),),
         pytender_only=_AT_FD),
    Case("net-read-nothing-queued-again", "net", _ok("empty read ret 1 len 1234"),
         opts=(MEM, *_NET), args=("hc-hostile", "read-empty"), pipes=(Echo(),),
         pytender_only=_AT_FD),
    *(Case(f"net-{kind}", "net", _fatal(msg), opts=(MEM, *_NET), args=("hc-hostile", kind),
           pipes=(Echo(),), pytender_only=why)
      for kind, msg, why in (
          ("write-oob", "Invalid guest access: gpa=0x3ffffff, sz=16", _AT_FD),
          ("read-oob", "Invalid guest access: gpa=0x4000000, sz=64", _AT_FD),
          ("read-lowmem", "Invalid guest access: gpa=0x2000, sz=64",
           "host writes refused below 0x100000"),
          ("read-text", ", sz=64", "host writes into read-only segments refused"))),
    # The ring I/O thread against entries posted straight into the ring (5.4).
    *(Case(f"ring-{kind}", "net", _fatal(msg), opts=(MEM, *_NET), args=("ring-hostile", kind),
           pipes=(Echo(),), pytender_only=_AT_FD, needs_ring=True)
      for kind, msg in (
          ("write-oob", "Invalid guest access: gpa=0x3ffffff, sz=16"),
          ("read-oob", "Invalid guest access: gpa=0x4001000, sz=64"),
          ("write-oob-halt", "Invalid guest access: gpa=0x3ffffff, sz=16"),
          ("write-oob-kick-halt", "Invalid guest access: gpa=0x3ffffff, sz=16"))),
    *(Case(f"ring-{kind}", "net", _ok(f"NET: ring-hostile {kind}"), opts=(MEM, *_NET),
           args=("ring-hostile", kind), pipes=(Echo(),), pytender_only=_AT_FD,
           needs_ring=True)
      for kind in ("bad-handle", "bad-op")),
    Case("ring-read-into-text", "net", _fatal("Invalid guest access: gpa=0x", ", sz=64"),
         opts=(MEM, *_NET), args=("ring-hostile", "read-text"), pipes=(Echo(),),
         pytender_only="host writes into read-only segments refused", needs_ring=True),
    Case("ring-read-into-low-memory", "net",
         _fatal("Invalid guest access: gpa=0x2000, sz=64"), opts=(MEM, *_NET),
         args=("ring-hostile", "read-lowmem"), pipes=(Echo(),),
         pytender_only="host writes refused below 0x100000", needs_ring=True),
    Case("ring-ent-tail-too-far-ahead", "net",
         _fatal("Invalid guest ring state: ent_head=0 ent_tail=5000"), opts=(MEM, *_NET),
         args=("ring-hostile", "ent-tail-jump"), pipes=(Echo(),),
         pytender_only="ring ent_tail more than one ring ahead is fatal", needs_ring=True),
]

CASES: tuple[Case, ...] = (*START, *HALT, *CORE, *PORTS, *WX, *BLOCK, *NET)
