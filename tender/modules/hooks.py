"""What a module's run hooks see (Solo5's `hvt_module` setup, as data): one
run's devices, manifest, closers and module state while the modules attach
(step 4), set up (step 11) and start (after the hypercall context exists).

The run assembly (tender/vm.py) makes one `Assembly` per run and walks the
table; it hands the hooks what exists at each step (`Booted`, `Started`)
instead of the hooks importing the layers above them."""

from __future__ import annotations

from collections.abc import Callable

from tender import abi
from tender.errors import HostError, UsageError
from tender.manifest import Manifest
from tender.record import field, record

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from typing import Any

    from tender.backend import RunBackend
    from tender.config import VmConfig
    from tender.hypercalls.context import Context
    from tender.layout import MemSize
    from tender.memory import GuestMemory


class loading:     # lower case: used as a function, `with loading(...)`
    """Around a lazy import: out of fds, it fails with OSError (or
    ImportError), which must reach a library user as a TenderError. (A
    class: contextlib is not imported on the boot path, issue 10.)"""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        pass

    def __exit__(self, _type: object, exc: BaseException | None, _tb: object) -> None:
        if isinstance(exc, (OSError, ImportError)):
            raise HostError(f"could not load {self.what}: {exc}") from None


def declared_handle(manifest: Manifest, name: str, dtype: abi.DeviceType) -> int:
    """The manifest handle of device `name` of type `dtype`, or the usage error."""
    handle = manifest.handle_of(name, dtype)
    if handle is None:
        found = manifest.find(name)
        if found is not None and found[1].type in (1, 2):
            raise UsageError(f"'{name}' is a {abi.DeviceType(found[1].type).name} device "
                             f"in the manifest, not {dtype.name}")
        raise UsageError(f"Resource not declared in manifest: '{name}'")
    return handle


@record
class Assembly:
    """One run's module state (mutable, one run). `devices[module][handle]`
    is what a module's attach opened (each has a `name`); `state[module]`
    holds what a module set up, and a module's halt, exit and loop hooks take
    part in the run only while it has an entry there."""

    config: VmConfig
    manifest: Manifest              # set-up hooks replace it (attached entries)
    diag: Callable[[str], None]
    closers: list[Callable[[], None]]   # the run's; closed last opened first
    devices: dict[str, dict[int, Any]] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    ring: Any = None                # the net ring, when net's start hook began one
    # The debug tools (tender.debug.attach_debug), handed down by the run
    # assembly: they read the table's trace fields, so the table cannot
    # import them (arrows point down); None where no debugging is possible.
    attach_debug: Callable[..., Any] | None = None

    def of(self, module: str) -> dict[int, Any]:
        """`module`'s devices by handle (empty if it has none)."""
        return self.devices.get(module, {})

    def add(self, module: str, handle: int, device: Any) -> None:
        self.devices.setdefault(module, {})[handle] = device

    def attached(self) -> frozenset[str]:
        """The modules that have at least one device in this run."""
        return frozenset(m for m, devs in self.devices.items() if devs)


@record(frozen=True)
class Booted:
    """What exists at step 11: the VM, its memory and its size."""

    backend: RunBackend
    mem: GuestMemory
    mem_size: MemSize


@record(frozen=True)
class Started:
    """What exists once the hypercall context does (the net ring's start)."""

    vm: Booted
    ctx: Context
    ring_ok: bool                   # native handlers, ring on, nothing observes it
    # Starts the net ring's C side on this backend (the assembly knows how;
    # net decides whether): the ring, or None if the guest gets no ring.
    start_ring: Callable[[], Any]
