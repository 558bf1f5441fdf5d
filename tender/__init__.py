"""pytender: a Solo5 hvt tender. Public API: Tender, VmConfig, Outcome, and
for interceptors Hypercall, Result, Call.

Names load lazily so that `python -m tender.manifest` and the CLI's early
error paths do not pay for the whole run path."""

from __future__ import annotations

from importlib import import_module

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from typing import Any

    from tender.abi import Hypercall, Result
    from tender.config import BlockSpec, CpuidMode, HandlerMode, NetSpec, VmConfig
    from tender.errors import InterceptError, TenderError
    from tender.intercept import Call
    from tender.session import Outcome
    from tender.vm import Tender, run

_WHERE = {
    "BlockSpec": "tender.config", "CpuidMode": "tender.config",
    "HandlerMode": "tender.config", "NetSpec": "tender.config",
    "VmConfig": "tender.config", "TenderError": "tender.errors", "Outcome": "tender.session",
    "Tender": "tender.vm", "run": "tender.vm", "Hypercall": "tender.abi",
    "Result": "tender.abi", "Call": "tender.intercept", "InterceptError": "tender.errors",
}

__all__ = [
    "BlockSpec", "Call", "CpuidMode", "HandlerMode", "Hypercall", "InterceptError", "NetSpec",
    "Outcome", "Result", "Tender", "TenderError", "VmConfig", "run",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'tender' has no attribute {name!r}")
