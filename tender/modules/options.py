"""Command-line options as module-table entries (the solo5-hvt grammar,
spec 7). Pure: an option reads one argument into an ArgState."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tender import abi
from tender.config import BlockSpec, NetSpec
from tender.errors import UsageError
from tender.manifest import Manifest

_NAME = r"([A-Za-z0-9]{1,67})"


@dataclass
class ArgState:
    """What the options before the current one said (mutable, one parse)."""

    manifest: Manifest
    config: dict[str, Any] = field(default_factory=dict)   # VmConfig keywords
    blocks: dict[str, BlockSpec] = field(default_factory=dict)
    sectors: dict[str, int] = field(default_factory=dict)
    nets: dict[str, NetSpec] = field(default_factory=dict)
    macs: dict[str, bytes] = field(default_factory=dict)
    order: dict[str, None] = field(default_factory=dict)  # device names, in order
    extra: dict[str, Any] = field(default_factory=dict)   # a module's own scratch


Match = re.Match[str]
Apply = Callable[[ArgState, str, Match], None]


@dataclass(frozen=True)
class Option:
    """`pattern` must match the whole argument; `apply` raises TenderError
    for a bad value (the error stops the parse there)."""

    pattern: re.Pattern[str]
    apply: Apply

    def accepts(self, arg: str) -> Match | None:
        return self.pattern.fullmatch(arg)


def name_pattern(prefix: str, value: str) -> re.Pattern[str]:
    """`--PREFIX:NAME=VALUE` with a solo5-hvt device name."""
    return re.compile(rf"--{prefix}:{_NAME}=({value})")


def invalid(arg: str, *detail: str) -> UsageError:
    return UsageError(f"Invalid option: `{arg}'", detail)


def declared(st: ArgState, name: str, dtype: abi.DeviceType, arg: str) -> None:
    if st.manifest.handle_of(name, dtype) is None:
        raise invalid(arg, f"Resource not declared in manifest: '{name}'")


def only(st: ArgState, dtype: abi.DeviceType, arg: str) -> str:
    """The one device of `dtype` the manifest declares (--disk, --net)."""
    names = [e.name for _, e in st.manifest.devices() if e.type == dtype]
    if len(names) != 1:
        what = ", ".join(f"'{n}'" for n in names) or "none"
        raise UsageError(
            f"{arg.split('=')[0]} needs exactly one {dtype.name} device in the manifest "
            f"(it declares: {what}); use --{'block' if dtype == 1 else 'net'}:NAME=..."
        )
    return names[0]


def setter(key: str, convert: Callable[[str], Any]) -> Apply:
    """An option whose first group, converted, is VmConfig field `key`."""
    def apply(st: ArgState, _arg: str, m: Match) -> None:
        st.config[key] = convert(m[1])
    return apply
