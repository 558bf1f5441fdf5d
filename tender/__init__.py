"""pytender: a Solo5 hvt tender. Public API: Tender, VmConfig, Outcome."""

from tender.config import BlockSpec, HandlerMode, NetSpec, VmConfig
from tender.errors import TenderError
from tender.vm import Outcome, Tender, run

__all__ = [
    "BlockSpec", "HandlerMode", "NetSpec", "Outcome", "Tender", "TenderError", "VmConfig", "run",
]
