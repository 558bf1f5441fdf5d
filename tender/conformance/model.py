"""The shape of a conformance case: pure data, no I/O.

A case is one tender run: options, a kernel (one of our guests, or a
special input), guest arguments, and what the run must produce. The
runner fills in the placeholders (`{img0}`, `{pipe0}`, ...) and judges the
result with `judge`, which is pure too."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# Guest memory for every case: the hostile guest's addresses depend on it.
MEM = "--mem=64"


class Kernel(Enum):
    """Kernels that are not one of our guests."""

    NONE = "none"          # no KERNEL operand at all
    NOT_ELF = "not-elf"    # a text file


@dataclass(frozen=True, slots=True)
class Expect:
    """What a run must produce. Texts are substrings; stderr texts are
    matched without the tender's `PROG: ` prefix, so any tender name fits."""

    status: int
    out: tuple[str, ...] = ()
    out_not: tuple[str, ...] = ()
    out_end: str | None = None
    out_exact: str | None = None
    err: tuple[str, ...] = ()
    err_any: tuple[str, ...] = ()     # at least one of these
    err_not: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Echo:
    """A FramePipe the runner attaches as `--net:NAME=@FD` and drives from
    Python: ARP for `ip`, then `count` ICMP echo round trips of `payload`
    bytes. count 0: the pipe is only attached."""

    ip: str = "10.0.0.2"
    count: int = 0
    payload: int = 8


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    kernel: str | Kernel              # a guest name (guests/build/NAME.hvt) or a special input
    expect: Expect
    opts: tuple[str, ...] = (MEM,)    # tender options before KERNEL
    args: tuple[str, ...] = ()        # guest arguments after KERNEL
    images: tuple[int, ...] = ()      # zero-filled image sizes: {img0}, {img1}, ...
    pipes: tuple[Echo, ...] = ()      # FramePipes as @FD: {pipe0}, {pipe1}, ...
    # Why only pytender passes it (a deliberate difference listed in the
    # README, or a pytender-only option); "" for HVT_SPEC.md behaviour.
    pytender_only: str = ""
    needs_ring: bool = False          # only meaningful with the native handlers


def judge(expect: Expect, status: int, out: str, err: str) -> list[str]:
    """Every way a run missed its expectation, most telling first; [] = PASS."""
    why: list[str] = []
    if status != expect.status:
        why.append(f"exit status {status}, expected {expect.status}")
    why += [f"stdout lacks {t!r}" for t in expect.out if t not in out]
    why += [f"stdout has {t!r}" for t in expect.out_not if t in out]
    if expect.out_end is not None and not out.endswith(expect.out_end):
        why.append(f"stdout does not end with {_short(expect.out_end)}")
    if expect.out_exact is not None and out != expect.out_exact:
        why.append(f"stdout is {_short(out)}, expected {_short(expect.out_exact)}")
    why += [f"stderr lacks {t!r}" for t in expect.err if t not in err]
    if expect.err_any and not any(t in err for t in expect.err_any):
        why.append("stderr has none of " + " / ".join(repr(t) for t in expect.err_any))
    why += [f"stderr has {t!r}" for t in expect.err_not if t in err]
    if "Traceback (most recent call last)" in out + err:
        why.append("a Python traceback reached the user")
    return why


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
