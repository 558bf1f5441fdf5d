"""Assemble one guest run: image + layout + backend + devices + hypercalls.

The steps follow solo5-hvt's order (spec 1), so the same input gives the same
first error: devices open in command-line order, and the CLI opens those
before a bad option first (Tender.open_devices)."""

from __future__ import annotations

import _thread
import mmap
import os
import signal
from collections.abc import Callable, Mapping

from tender import abi, elf, intercepting, layout, modules, wx
from tender import manifest as mft
from tender.config import HandlerMode, VmConfig
from tender.devices.poller import Poller
from tender.errors import ElfError, ManifestError, TenderError
from tender.exits import KickMode
from tender.hypercalls import Context, Handler
from tender.hypercalls.halt import Halt
from tender.memory import GuestMemory
from tender.modules import dispatch_table
from tender.modules.hooks import Assembly, Booted, Started
from tender.modules.hooks import loading as _loading
from tender.native import native_set, native_view
from tender.runloop import LoopHooks, StopFlag, run_until_halt
from tender.session import (
    Diag,
    ExitHook,
    HaltHook,
    Outcome,
    RunningVm,
    default_diag,
)
from tender.usercode import UserCode

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from typing import Any

    from tender.backend import RunBackend, StatsView
    from tender.devices.ring import NetRing
    from tender.intercept import Interceptor, InterceptRun
    from tender.stats import LiveRun, Stats

# Sent by Tender.stop() to the thread running the guest; its C handler makes
# the backend's run() return at once (the gdb stub's Ctrl-C uses the same
# mechanism).
STOP_SIGNAL = signal.SIGUSR2


# An interceptor on one of these must see every frame and wait: no net ring.
RING_CALLS = frozenset({abi.Hypercall.NET_WRITE, abi.Hypercall.NET_READ, abi.Hypercall.POLL})


def load_guest(config: VmConfig) -> tuple[elf.Source, elf.Notes, mft.Manifest]:
    """Steps 2-3: open the kernel, read its ABI and manifest notes (the
    PT_LOAD ranges are read later, straight from the file)."""
    binary = elf.open_kernel(config.kernel)
    try:
        notes = elf.read_notes(binary, config.kernel)
        manifest = mft.decode(notes.manifest_payload)
    except ManifestError:
        binary.close()
        raise ManifestError(f"{config.kernel}: Solo5 manifest is invalid") from None
    except BaseException:
        # A kept exception's traceback would keep the fd open until collected.
        binary.close()
        raise
    return binary, notes, manifest


def _load_backend(cfg: VmConfig, diag: Diag) -> RunBackend:
    """Import the run path's lazily loaded modules up front (see _loading)."""
    from importlib import import_module

    with _loading("the run loop"):
        import_module("tender._vcpu")
        import_module("tender.stats")
        host = import_module("tender.host")
        backend: RunBackend = host.open_backend(cfg, diag)
    return backend


def _attach_debug(*args: Any) -> Any:
    """tender.debug.attach_debug, imported only by a run that debugs."""
    from tender.debug import attach_debug

    return attach_debug(*args)


class Tender:
    """Run one guest. `Tender(config).run()` returns an Outcome or raises a
    TenderError whose message is the one-line diagnostic."""

    def __init__(
        self,
        config: VmConfig,
        *,
        guest: tuple[elf.Source, elf.Notes, mft.Manifest] | None = None,
        diag: Diag = default_diag,
        console_fd: int = 1,
        kick_signals: tuple[int, ...] = (),
        halt_hooks: tuple[HaltHook, ...] = (),
        exit_hooks: tuple[ExitHook, ...] = (),
        sandbox: bool = False,
        intercept: Mapping[Any, Interceptor] | None = None,
        table: tuple[modules.Module, ...] = modules.TABLE,
    ) -> None:
        self.config = config
        self._table = table     # the modules this tender runs (tender/modules/)
        self._intercept = intercepting.checked(intercept)
        self._icpt: InterceptRun | intercepting.NoIntercepts = intercepting.NO_INTERCEPTS
        self._user = UserCode()     # interceptors and --script run inside it
        self._guest = guest
        self._diag = diag
        self._console_fd = console_fd
        self._kick_signals = kick_signals
        self._halt_hooks = halt_hooks   # the caller's; each run adds its own
        self._exit_hooks = exit_hooks
        self._run_halt_hooks: list[HaltHook] = []
        self._run_exit_hooks: list[ExitHook] = []
        self._sandbox = sandbox
        self._asm: Assembly | None = None   # the current run's module state
        self._native_calls: frozenset[int] = frozenset()    # what C may serve this run
        self._stop = StopFlag()
        self._vcpu_thread: int | None = None
        # Held while stop() signals the vCPU thread and while that thread
        # leaves the loop: pthread_kill on a thread that has exited is
        # undefined (it can crash the process), so stop() must never race it.
        # Re-entrant: a signal handler on the vCPU thread may call stop().
        self._thread_lock = _thread.RLock()   # threading.RLock is this C lock
        self._closers: list[Callable[[], None]] = []
        self._keep: list[Any] = []      # C-side arrays of the current run
        self._wx_protected: layout.Ranges | None = None
        self._live: LiveRun | None = None   # counters of the current (or last) run

    def stats(self) -> Stats:
        """A frozen snapshot of the current (or last) run's counters, from
        any thread, without stopping the guest (tender/stats.py)."""
        from tender import stats

        live = self._live
        return stats.idle(os.path.basename(self.config.kernel)) if live is None \
            else live.snapshot()

    def stop(self) -> None:
        """Stop a running guest from any thread: run() raises Stopped soon
        (at once while the guest computes or waits in a native POLL; a
        Python-mode POLL finishes its timeout first)."""
        self._stop.set()
        with self._thread_lock:
            if self._vcpu_thread is not None:
                signal.pthread_kill(self._vcpu_thread, STOP_SIGNAL)

    def interrupt(self, signum: int) -> None:
        """stop() for a signal handler on the vCPU thread: an interceptor or
        --script running there is interrupted at once (Interrupted raised)."""
        self.stop()
        self._user.interrupt(signum)

    # --- steps ---------------------------------------------------------------
    def _attach(self, manifest: mft.Manifest) -> Assembly:
        """Step 4: each module opens its devices, all in command-line order
        (names not on it follow in table order: blocks before nets)."""
        asm = Assembly(self.config, manifest, self._diag, self._closers,
                       attach_debug=_attach_debug)
        specs = [(spec, m) for m in self._table if m.devices is not None
                 for spec in m.devices(self.config)]
        rank = {name: i for i, name in enumerate(self.config.attach_order)}
        specs.sort(key=lambda sm: rank.get(sm[0].name, len(rank)))   # stable
        for spec, m in specs:
            assert m.attach is not None, f"module {m.name} has devices but no attach"
            m.attach(asm, spec)
        return asm

    def open_devices(self) -> None:
        """Open and close this configuration's devices, nothing else: where a
        later option is bad, solo5-hvt reports a device error first."""
        manifest = (self._guest or load_guest(self.config))[2]
        try:
            self._attach(manifest)
        finally:
            self._teardown()

    def run(self) -> Outcome:
        self._asm = None
        self._run_halt_hooks = list(self._halt_hooks)
        self._run_exit_hooks = list(self._exit_hooks)
        try:
            outcome = self._run()
        except BaseException as exc:
            for also in self._teardown():
                # Report what else went wrong on the way out, once.
                if not (isinstance(exc, TenderError) and also.message == exc.message):
                    self._diag(also.message)
            raise
        late = self._teardown()
        if late:
            # Acknowledged writes may not be on disk, or the ring thread
            # failed on the guest's last entries: the run failed.
            raise late[0]
        return outcome

    def _teardown(self) -> list[TenderError]:
        """Close everything, last opened first. Returns what failed on the
        way (a block device's final fdatasync, the ring thread's last
        entries): the run failed then, whatever the guest said."""
        errors: list[TenderError] = []
        for close in reversed(self._closers):
            try:
                close()
            except TenderError as exc:
                errors.append(exc)
            except (OSError, BufferError):
                pass
        self._closers.clear()
        self._keep.clear()      # the ring thread is joined by now
        return errors

    def _run(self) -> Outcome:
        backend = _load_backend(self.config, self._diag)
        cfg = self.config
        if self._guest is None:
            binary, notes, manifest = load_guest(cfg)
            if isinstance(binary, elf.KernelFile):
                # Closed with the run, not when a kept traceback is collected.
                self._closers.append(binary.close)
        else:
            binary, notes, manifest = self._guest
        self._icpt = intercepting.for_run(self._intercept, cfg.script, self._user)
        self._asm = asm = self._attach(manifest)

        # Step 6: memory size.
        mem_size = layout.mem_size(cfg.mem, has_net=bool(asm.of("net")))
        if mem_size.warning:
            self._diag(mem_size.warning)

        # Step 7: the VM and its memory.
        self._closers.append(backend.close)
        mem = GuestMemory(mem_size.alloc, mem_size.guest, backend.open(mem_size.alloc))
        self._closers.append(mem.close)
        live = self._start_stats(mem_size.guest, asm, backend.stats_view())

        # Step 8: the ELF image; host pages of text/rodata become read-only
        # and no guest page is ever host-executable.
        plan = elf.plan_load(binary, cfg.kernel, mem_size.alloc)
        for seg in plan.segments:
            if seg.end > mem_size.guest:
                # Legal for the loader (it sees the whole allocation, spec
                # 2.2) but it would sit in the net ring, which the tender owns.
                raise ElfError(
                    f"{cfg.kernel}: invalid executable: phdr[{seg.index}] overlaps the "
                    f"net ring area at 0x{mem_size.guest:x}"
                )
            mem.load(seg.vaddr, binary[seg.offset : seg.offset + seg.filesz])
            prot = mmap.PROT_READ | (mmap.PROT_WRITE if seg.flags & 2 else 0)
            mem.protect(seg.start, seg.end, prot)
            if not prot & mmap.PROT_WRITE:
                backend.map_readonly(seg.start, seg.end - seg.start)

        # Step 10: vCPU.
        cpu = layout.cpu_plan(plan.entry, mem_size,
                              wx.wx_map(plan.segments) if cfg.wx else None)
        for gpa, blob in cpu.blobs:
            mem.load(gpa, blob)
        backend.boot(cpu)
        tsc_hz = backend.tsc_hz()

        # Step 11: module set-up in table order (the debug modules after net,
        # as upstream), then every declared device must be attached.
        booted = Booted(backend, mem, mem_size)
        for m in self._table:
            if m.setup is not None:
                m.setup(asm, booted)
        manifest = asm.manifest
        missing = manifest.unattached()
        for e in missing:
            # solo5-hvt's wording for a type it has no name for.
            tname = abi.DeviceType(e.type).name if e.type in (1, 2) else "<undefined type>"
            self._diag(f"Device '{e.name}' of type {tname} declared but not attached.")
        if missing:
            raise TenderError("All declared devices must be attached. See --help for syntax.")

        polled = modules.poll_fds(asm, self._table)
        poller = Poller(polled)
        self._closers.append(poller.close)
        ctx = Context(mem=mem, blocks=asm.of("block"), nets=asm.of("net"),
                      console_fd=self._console_fd, poller=poller, tally=live.tally,
                      devices=asm.devices)
        calls = modules.registered(asm.attached(), self._table)
        self._native_calls = modules.native_calls(calls, polled, ctx.nets)
        # No ring when Python serves POLL (the ring serves it too) or an
        # interceptor must see the frames.
        ring_ok = (self._native() and cfg.net_ring and abi.Hypercall.POLL in self._native_calls
                   and not self._icpt.intercepted & RING_CALLS)
        started = Started(booted, ctx, ring_ok,
                          lambda: self._start_ring(backend, mem, mem_size, manifest, ctx))
        for m in self._table:
            if m.start is not None:
                m.start(asm, started)
        early, late, exits = modules.run_hooks(asm, self._table)
        self._run_halt_hooks[:0] = early    # the ring thread stops first, as upstream
        self._run_halt_hooks += late
        self._run_exit_hooks += exits

        # Step 12: boot info, manifest copy, command line.
        for gpa, blob in layout.boot_blobs(
            kernel_end=plan.kernel_end, mem=mem_size, tsc_hz=tsc_hz,
            manifest=manifest.guest_copy(notes.manifest_payload), args=cfg.args,
            ring_active=asm.ring is not None,
        ):
            mem.load(gpa, blob)
        low_end = wx.LOW_MEMORY[1] if cfg.wx else 0
        if low_end and not backend.guest_readonly(0, low_end):
            # No read-only memslot: host-read-only pages instead (hardware
            # KVM then fails the run with EFAULT: the same fault).
            mem.protect(0, low_end, mmap.PROT_READ)
        # What a W^X #PF may have written to (classify_abort); None: --wx=off.
        self._wx_protected = (*mem.read_only, wx.LOW_MEMORY) if cfg.wx else None

        running = RunningVm(cfg, mem, manifest, ctx, backend.debug_target, self._diag)
        if cfg.metrics_port is not None:
            self._serve_metrics(cfg.metrics_port)
        table = self._icpt.wrap(self._handlers(asm.attached(), calls))

        def loop(vm: RunningVm, table: dict[int, Handler]) -> Outcome:
            return self._loop(backend, vm, table)

        for m in self._table:
            if m.around is not None and m.name in asm.state:
                around = m.around
                return around(asm, running, table, loop)
        # Step 13: drop privileges (never with a module around the loop: the
        # debug features need sockets and files, as solo5-hvt-debug).
        # Interceptors are the user's code: they get the process as it is.
        if self._sandbox and not self._icpt.intercepted:
            from tender import sandbox

            held = sandbox.Held.of(backend, asm.of("block").values(), asm.of("net").values(),
                                   poller, asm.ring, self._console_fd)
            if (missing_sandbox := sandbox.enter(metrics=cfg.metrics_port is not None,
                                                 held=held)):
                self._diag(missing_sandbox)
        return loop(running, table)

    def _start_stats(self, mem_size: int, asm: Assembly, host: StatsView) -> LiveRun:
        from tender.stats import LiveRun

        # A device's kind is its module's name ("block", "net"), in table order.
        devices = {h: (d.name, m.name) for m in self._table for h, d in asm.of(m.name).items()}
        live = LiveRun(os.path.basename(self.config.kernel), mem_size, devices, host=host)
        self._live = live
        self._closers.append(live.finish)
        return live

    def _serve_metrics(self, port: int) -> None:
        """/metrics of this tender on 127.0.0.1:port until the run ends."""
        try:
            from tender import metrics
        except (OSError, ImportError) as exc:     # out of fds, like _load_backend
            raise TenderError(f"metrics: could not load: {exc}") from None
        server = metrics.serve({os.path.basename(self.config.kernel): self}, port)
        self._closers.append(server.close)
        self._diag(f"serving metrics on {server.url}")

    def _native(self) -> bool:
        # A trace must see every hypercall, so it forces the Python handlers.
        return self.config.handlers is HandlerMode.NATIVE and self.config.trace is None

    def _handlers(self, attached: frozenset[str],
                  calls: Mapping[int, modules.Call]) -> dict[int, Handler]:
        if self._table is modules.TABLE:
            # The same handlers, by the name tests/test_intercept.py wraps.
            return dispatch_table("block" in attached, "net" in attached)
        return {nr: c.handler for nr, c in calls.items()}

    def _start_ring(self, backend: RunBackend, mem: GuestMemory, mem_size: layout.MemSize,
                    manifest: mft.Manifest, ctx: Context) -> NetRing | None:
        """The net ring's C side on this backend, for net's start hook (None:
        no ring: with --net-ring=auto where it costs more than it saves)."""
        if self.config.net_ring == "auto":
            from tender.host import ring_pays  # loaded by _load_backend

            if not ring_pays():
                return None
        with _loading("the net ring module"):
            from tender.devices.ring import NetRing

        view = native_view(mem, manifest, ctx, self._keep,
                           self._live.c if self._live is not None else None)
        if backend.kick_mode is KickMode.EXIT:     # no ioeventfd: the loop kicks
            return NetRing.start_piped(view, mem_size.ring_base, STOP_SIGNAL, self._diag)
        return NetRing.start(backend.ring_kick(), view, mem_size.ring_base,
                             backend.native_part, STOP_SIGNAL, self._diag)

    # --- step 14: the vCPU loop ---------------------------------------------
    def _loop(self, backend: RunBackend, vm: RunningVm, table: dict[int, Handler]) -> Outcome:
        live = self._live
        assert live is not None     # _run made it
        v = native_view(vm.mem, vm.manifest, vm.ctx, self._keep, live.c)
        ring = self._asm.ring if self._asm is not None else None
        if ring is not None:
            v.ring = ring.handle
        if self._native():
            served = native_set(vm.ctx, set(table) & self._native_calls) - self._icpt.intercepted
            v.native_mask = sum(1 << nr for nr in served)
        backend.enter(v, (*self._kick_signals, STOP_SIGNAL), bool(self._run_exit_hooks))
        with self._thread_lock:
            self._vcpu_thread = _thread.get_ident()
        protected = self._wx_protected

        def fault_of(h: Halt) -> str | None:
            return None if protected is None else wx.classify_abort(
                h.status, h.trap_frame, protected, backend.translation_fault)

        kick = ring.kick if ring is not None else (lambda: None)
        hooks = LoopHooks(self._stop, self._icpt.halt, self._run_halt_hooks,
                          self._run_exit_hooks, fault_of, kick)
        try:
            return run_until_halt(backend, vm, table, hooks, v, live.hypercalls)
        finally:
            live.finish()
            with self._thread_lock:
                self._vcpu_thread = None
            backend.leave()


def run(config: VmConfig) -> Outcome:
    """Library shorthand: run a guest to completion."""
    return Tender(config).run()


__all__ = ["Outcome", "RunningVm", "Tender", "load_guest", "run"]
