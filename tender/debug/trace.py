"""--trace=FILE: one JSON line per hypercall, VM exit and the run's end.

Line shape: {"time": <ns since start>, "event": "hypercall", "nr": 2,
"name": "puts", "args": {...}, "result": {...}, "vary": [...]}.
"vary" names the args/result keys whose values legitimately differ between
two runs of the same guest (clock readings, poll timeouts); with "time" and
those removed, a guest's trace is the same every run.

Tracing wraps the Python reference handlers; vm.py turns the native C twins
off while a trace is open, so every hypercall passes through here."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from tender import abi, modules
from tender.errors import DebugError, TenderError
from tender.hypercalls import Context, Handler
from tender.memory import GuestMemory

MAX_TEXT = 4096                  # console bytes copied into one record
Fields = dict[str, Any]

# nr -> (struct, field names, fields the tender writes, fields that vary),
# from the module table.
_LAYOUT: dict[int, tuple[Any, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    nr: (f.layout, f.names, f.written, f.vary) for nr, f in modules.trace_fields().items()
}


def _fields(mem: GuestMemory, nr: int, gpa: int) -> Fields | None:
    layout, names, _, _ = _LAYOUT[nr]
    try:
        return dict(zip(names, mem.read_struct(layout, gpa), strict=True))
    except TenderError:
        return None           # the handler will report the bad address


class Tracer:
    def __init__(self, path: str) -> None:
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                               0o644)
        except OSError as exc:
            raise DebugError(f"trace: cannot open {path}: {exc.strerror}") from None
        self._t0 = time.monotonic_ns()

    def _emit(self, record: Fields) -> None:
        line = {"time": time.monotonic_ns() - self._t0, **record}
        if self._fd >= 0:
            # One write per line: a trace cut short by a crash is still valid.
            os.write(self._fd, (json.dumps(line, separators=(",", ":")) + "\n").encode())

    # --- hooks ---------------------------------------------------------------
    def wrap(self, table: dict[int, Handler]) -> dict[int, Handler]:
        return {nr: self._wrap_one(nr, h) for nr, h in table.items()}

    def _wrap_one(self, nr: int, handler: Handler) -> Handler:
        name = abi.Hypercall(nr).name.lower()
        _, _, outs, vary = _LAYOUT[nr]

        def traced(ctx: Context, gpa: int) -> None:
            before = _fields(ctx.mem, nr, gpa)
            args: Fields = {"gpa": gpa}
            if before is not None:
                args.update((k, v) for k, v in before.items() if k not in outs or k == "len")
                if nr == abi.Hypercall.PUTS:
                    args["text"] = _text(ctx.mem, before["data"], before["len"])
            record: Fields = {"event": "hypercall", "nr": nr, "name": name, "args": args}
            try:
                handler(ctx, gpa)
            except TenderError as exc:
                self._emit({**record, "error": exc.message})
                raise
            after = _fields(ctx.mem, nr, gpa) or {}
            record["result"] = {k: after[k] for k in outs if k in after}
            if vary:
                record["vary"] = list(vary)
            self._emit(record)

        return traced

    def on_halt(self, status: int, cookie: int, frame: tuple[int, ...] | None) -> None:
        args: Fields = {"status": status, "cookie": cookie}
        if frame is not None:
            args["trap_frame"] = dict(
                zip(abi.TRAP_FRAME_FIELDS, frame, strict=True))
        self._emit({"event": "hypercall", "nr": int(abi.Hypercall.HALT), "name": "halt",
                    "args": args})

    def on_vmexit(self, reason: int, fields: dict[str, object] | None = None) -> None:
        """A VM exit that is not a hypercall (debug, MMIO, errors); `fields`:
        what the backend adds (HostExit.trace_fields)."""
        self._emit({"event": "vmexit", "kvm_reason": reason, **(fields or {})})

    def end(self, status: int | None, error: str | None = None) -> None:
        rec: Fields = {"event": "exit"}
        if status is not None:
            rec.update(status=status, exit_code=status & 0xFF)
        if error is not None:
            rec.update(error=error, exit_code=1)
        self._emit(rec)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _text(mem: GuestMemory, data: int, length: int) -> str | None:
    try:
        raw = bytes(mem.checked(data, min(length, MAX_TEXT)))
    except TenderError:
        return None
    return raw.decode("utf-8", errors="backslashreplace")

