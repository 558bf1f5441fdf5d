"""Typed errors at the tender boundary. Each carries the one-line message the
user sees; `cli` maps classes to exit codes in one place."""

from __future__ import annotations


def one_line(text: str) -> str:
    """A diagnostic stays one line even when it quotes user input (an option
    or path with a newline or other control character in it)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class TenderError(Exception):
    """Base class: a fatal tender error (solo5-hvt exit status 1)."""

    def __init__(self, message: str) -> None:
        message = one_line(message)
        super().__init__(message)
        self.message = message


class UsageError(TenderError):
    """Bad command line; usage text follows the message. `detail` lines (why
    an option was refused) are printed before it."""

    def __init__(self, message: str, detail: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.detail = detail


class ElfError(TenderError):
    """The guest binary is not a loadable hvt executable."""


class ManifestError(TenderError):
    """The manifest note is missing or invalid, or a manifest JSON is bad."""


class GuestFault(TenderError):
    """The guest did something the tender must stop it for (bad address,
    bad port, translation fault, ...)."""


class KvmError(TenderError):
    """Hypervisor set-up or run failure (raised by tender/kvm/ only)."""


class HostError(TenderError):
    """A host OS facility the tender relies on failed, whichever the
    hypervisor: guest memory, mprotect, the sandbox, loading the run loop."""


class CapsicumError(HostError):
    """FreeBSD: limiting a descriptor or entering capability mode failed
    (tender/freebsd/); the run does not go on half sandboxed."""


class DeviceError(TenderError):
    """A host-side device (block image, tap) could not be attached or used."""


class BlockIOError(DeviceError):
    """The backing store failed one request (ENOSPC, EIO, a short transfer):
    the guest gets EUNSPEC, the tender goes on. (Here, not in devices.block,
    so the BLOCK handlers need not load the device module on a boot without
    a block device; tender.devices.block re-exports it.)"""


class ConsoleError(DeviceError):
    """A write to the console (fd 1) failed. solo5-hvt asserts on that
    (spec 4.4), so the CLI ends with SIGABRT once the run has torn down."""

    PREFIX = "Fatal error writing to console"


class DebugError(TenderError):
    """A debug module (gdb stub, dumpcore, trace) could not be set up, or the
    debugger ended the run (gdb `kill`)."""


class InterceptError(TenderError):
    """A bad `intercept` table or --script file, or an interceptor that
    raised or returned something its hypercall cannot take."""


class Interrupted(TenderError):
    """SIGINT/SIGTERM: solo5-hvt exits 1 with `Exiting on signal N`."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"Exiting on signal {signum}")
        self.signum = signum


class Stopped(TenderError):
    """`Tender.stop()` ended the run before the guest halted."""

    def __init__(self) -> None:
        super().__init__("Guest stopped on request")
