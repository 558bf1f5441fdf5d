"""The reference (Python) hypercall handlers, one module per concern.

The dispatch table is derived from the module table (tender.modules.dispatch_table)."""

from __future__ import annotations

from tender.hypercalls.context import Context, Handler

__all__ = ["Context", "Handler"]
