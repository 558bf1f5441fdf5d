"""What a module declares (Solo5's `struct hvt_module`, as data)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from tender.hypercalls.context import Handler
from tender.modules.options import ArgState, Option


class When(Enum):
    """When a module's hypercalls are in the dispatch table (as solo5-hvt
    registers them: block and net only with such a device attached)."""

    ALWAYS = "always"
    BLOCK = "block"
    NET = "net"


@dataclass(frozen=True)
class TraceFields:
    """How --trace records one hypercall's argument struct."""

    layout: struct.Struct
    names: tuple[str, ...]        # the struct's fields, in order
    written: tuple[str, ...] = ()  # fields the tender writes (the result)
    vary: tuple[str, ...] = ()     # fields that differ run to run


@dataclass(frozen=True)
class Call:
    """One hypercall a module registers."""

    nr: int
    handler: Handler          # the Python reference
    native: bool              # a C twin exists in csrc/vcpu_loop.c
    trace: TraceFields


@dataclass(frozen=True)
class Module:
    """One row of the module table. (Every boot-path dataclass has a
    docstring: without one, dataclass() imports inspect to make it.)"""

    name: str
    usage: tuple[str, ...] = ()      # option lines of the usage text
    options: tuple[Option, ...] = ()  # the grammar of those options
    calls: tuple[Call, ...] = ()
    when: When = When.ALWAYS
    compiled_in: bool = True         # listed under "Compiled-in modules:"
    # After the options: turn the module's scratch into VmConfig fields.
    finish: Callable[[ArgState], None] | None = None
