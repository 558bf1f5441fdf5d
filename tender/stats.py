"""Live statistics of a guest run: `Tender.stats()` returns a `Stats`.

Three sources, all read without stopping the guest:
- `struct vl_stats` (csrc/vl_stats.h): what C serves, bumped by the vCPU
  thread and the net ring thread, each in its own part (one writer each,
  plain increments; word-sized loads here see monotone, untorn values);
- the Python path: hypercall counts of the run loop and the handlers'
  `Tally` (written by the vCPU thread only);
- the host's own counters (KVM's binary statistics of the VM and vCPU
  fds, where the host has them), through the backend's `StatsView`.

A snapshot costs one copy of the C counters (about 9.5 KB, read as u64
words) and the view's read (KVM: one pread per stats fd); the guest never
waits on a reader. The exit counters are named by the view too."""

from __future__ import annotations

import _thread
import enum
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

from tender import abi
from tender.hypercalls.tally import N_FIELDS, Tally
from tender.record import field, record

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from typing import Any

    from tender.backend import StatsView

_EMPTY: Mapping[str, int] = MappingProxyType({})


class RunState(enum.Enum):
    IDLE = "idle"           # no run started yet
    RUNNING = "running"
    EXITED = "exited"       # figures are final


@record(frozen=True, slots=True)
class DeviceStats:
    """One attached device. For a net device, read = rx and write = tx."""

    name: str
    kind: str                   # "block" or "net"
    read_ops: int = 0
    read_bytes: int = 0
    read_errors: int = 0
    write_ops: int = 0
    write_bytes: int = 0
    write_errors: int = 0
    drops: int = 0              # net tx frames dropped on a full queue
    rx_empty: int = 0           # net rx attempts that found no frame

    @property
    def rx_packets(self) -> int:
        return self.read_ops

    @property
    def tx_packets(self) -> int:
        return self.write_ops


@record(frozen=True, slots=True)
class KvmStats:
    """The host's own scalars of the VM and vCPU (KVM_GET_STATS_FD on KVM);
    both mappings are empty when `unavailable` says why (an old kernel,
    another hypervisor)."""

    vm: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    vcpu: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    unavailable: str | None = None


@record(frozen=True, slots=True)
class Stats:
    guest: str                              # the kernel's file name
    state: RunState
    run_time: float                         # seconds since the VM was set up
    mem_size: int                           # guest-visible bytes
    hypercalls: Mapping[str, int]           # by name, C and Python paths, halt too
    exits: Mapping[str, int]                # vCPU run returns by kind, "interrupted"
    devices: Mapping[str, DeviceStats]      # by command-line name
    bad_handle: int = 0                     # requests naming no such device
    ring_kicks: int = 0                     # net ring thread woken by the guest
    kvm: KvmStats = field(default_factory=KvmStats)


def idle(guest: str) -> Stats:
    return Stats(guest, RunState.IDLE, 0.0, 0, _EMPTY, _EMPTY, MappingProxyType({}),
                 kvm=KvmStats(unavailable="not running"))


@record(frozen=True, slots=True)
class PartLayout:
    """Word offsets inside one `struct vl_counters` (from cffi, not typed in)."""

    words: int
    hypercalls: int
    n_hypercalls: int
    exits: int
    n_exits: int
    interrupted: int
    bad_handle: int
    ring_kicks: int
    dev: int


@record(frozen=True, slots=True)
class Part:
    hypercalls: tuple[int, ...]
    exits: tuple[int, ...]
    interrupted: int
    bad_handle: int
    ring_kicks: int
    words: Sequence[int]
    dev_at: int

    def dev(self, handle: int) -> Sequence[int]:
        start = self.dev_at + handle * N_FIELDS
        return self.words[start : start + N_FIELDS]


def decode_part(words: Sequence[int], lay: PartLayout) -> Part:
    """Pure: the u64 words of one part -> its counters."""
    return Part(
        tuple(words[lay.hypercalls : lay.hypercalls + lay.n_hypercalls]),
        tuple(words[lay.exits : lay.exits + lay.n_exits]),
        words[lay.interrupted], words[lay.bad_handle], words[lay.ring_kicks], words, lay.dev,
    )


def combine(guest: str, state: RunState, run_time: float, mem_size: int,
            devices: Mapping[int, tuple[str, str]], parts: Sequence[Part],
            py_hypercalls: Sequence[int], tally: Tally, host: KvmStats,
            exit_name: Callable[[int, int], str]) -> Stats:
    """Pure: add C parts and the Python path into one snapshot; `exit_name`
    names the exit counters (StatsView.exit_name)."""
    hc: dict[str, int] = {}
    for nr in abi.Hypercall:
        n = (py_hypercalls[nr] if nr < len(py_hypercalls) else 0) + sum(
            p.hypercalls[nr] for p in parts if nr < len(p.hypercalls))
        if n:
            hc[nr.name.lower()] = n
    exits: dict[str, int] = {}
    for p in parts:
        last = len(p.exits) - 1
        for reason, n in enumerate(p.exits):
            if n:
                name = exit_name(reason, last)
                exits[name] = exits.get(name, 0) + n
    interrupted = sum(p.interrupted for p in parts)
    if interrupted:
        exits["interrupted"] = interrupted
    devs: dict[str, DeviceStats] = {}
    for handle, (name, kind) in devices.items():
        row = list(tally.row(handle))
        for p in parts:
            for i, n in enumerate(p.dev(handle)):
                row[i] += n
        devs[name] = DeviceStats(name, kind, *row)
    return Stats(
        guest, state, run_time, mem_size, MappingProxyType(hc), MappingProxyType(exits),
        MappingProxyType(devs), bad_handle=sum(p.bad_handle for p in parts) + tally.bad_handle,
        ring_kicks=sum(p.ring_kicks for p in parts), kvm=host,
    )


def _layout(ffi: Any, lib: Any) -> PartLayout:
    def at(name: str) -> int:
        return int(ffi.offsetof("struct vl_counters", name)) // 8

    return PartLayout(
        words=ffi.sizeof("struct vl_counters") // 8,
        hypercalls=at("hypercalls"), n_hypercalls=lib.VL_STATS_NR,
        exits=at("exits"), n_exits=lib.VL_EXIT_KINDS, interrupted=at("interrupted"),
        bad_handle=at("bad_handle"), ring_kicks=at("ring_kicks"), dev=at("dev"),
    )


class LiveRun:
    """The counters of one run and what reads them. Created once the VM and
    vCPU exist; `finish()` freezes the figures when the run ends."""

    def __init__(self, guest: str, mem_size: int, devices: Mapping[int, tuple[str, str]],
                 *, host: StatsView) -> None:
        """`host`: the backend's stats view; closed by finish()."""
        from tender._vcpu import ffi, lib

        self._ffi = ffi
        self.c = ffi.new("struct vl_stats *")   # lives as long as this object
        self._lay = _layout(ffi, lib)
        self._words = ffi.cast("uint64_t *", self.c)
        self.hypercalls = [0] * (abi.HYPERCALL_MAX + 1)    # the Python path's
        self.tally = Tally()                  # the handlers' (Context.tally)
        self._guest, self._mem_size = guest, mem_size
        self._devices = MappingProxyType(dict(devices))
        self._t0 = time.monotonic()
        self._t1: float | None = None
        self._lock = _thread.allocate_lock()  # the host view against finish(); never the guest's
        self._host = host
        self._final_host: KvmStats | None = (
            None if host.unavailable is None else KvmStats(unavailable=host.unavailable))

    def _host_counters(self) -> KvmStats:
        with self._lock:
            if self._final_host is not None:
                return self._final_host
            return KvmStats(*self._host.read())

    def snapshot(self) -> Stats:
        host = self._host_counters()
        t1 = self._t1
        state = RunState.RUNNING if t1 is None else RunState.EXITED
        n = self._lay.words
        words = self._ffi.unpack(self._words, 2 * n)    # u64 loads, no lock
        parts = [decode_part(words[:n], self._lay), decode_part(words[n:], self._lay)]
        elapsed = (time.monotonic() if t1 is None else t1) - self._t0
        return combine(self._guest, state, elapsed, self._mem_size, self._devices, parts,
                       list(self.hypercalls), self.tally, host, self._host.exit_name)

    def finish(self) -> None:
        """The run is over: freeze the clock and the host's figures, close
        the host view (before the VM goes). Idempotent."""
        with self._lock:
            if self._t1 is not None:
                return
            if self._final_host is None:
                self._final_host = KvmStats(*self._host.read())
            self._host.close()
            self._t1 = time.monotonic()
