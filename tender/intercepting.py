"""Which interceptors a run has, without importing them when it has none.

tender.intercept defines a frozen dataclass per hypercall's arguments and
tender.script imports importlib.util: together a few ms and most of a MiB
at every start. A run with no `intercept=` and no `--script` (the CLI's
usual case) gets `NO_INTERCEPTS`, which behaves as an empty InterceptRun."""

from __future__ import annotations

from collections.abc import Mapping

from tender.hypercalls.halt import Halt, halt
from tender.memory import GuestMemory

TYPE_CHECKING = False   # as typing's, without importing typing (see tender/record.py)
if TYPE_CHECKING:
    from typing import Any

    from tender.abi import Hypercall
    from tender.hypercalls.context import Handler
    from tender.intercept import Interceptor, InterceptRun
    from tender.usercode import UserCode


class NoIntercepts:
    """InterceptRun({}): nothing intercepted, handlers unchanged."""

    @property
    def intercepted(self) -> frozenset[Hypercall]:
        return frozenset()

    def wrap(self, handlers: dict[int, Handler]) -> dict[int, Handler]:
        return handlers

    def halt(self, mem: GuestMemory, gpa: int) -> Halt:
        return halt(mem, gpa)


NO_INTERCEPTS = NoIntercepts()


def checked(table: Mapping[Any, Any] | None) -> dict[Hypercall, Interceptor]:
    """tender.intercept.interceptors, imported only for a non-empty table."""
    if not table:
        return {}
    from tender.intercept import interceptors

    return interceptors(table)


def for_run(given: Mapping[Hypercall, Interceptor], script: str | None,
            user: UserCode) -> InterceptRun | NoIntercepts:
    """The run's InterceptRun (the caller's table plus the script's; `user`
    marks the time spent in their code)."""
    if not given and script is None:
        return NO_INTERCEPTS
    from tender.intercept import InterceptRun
    from tender.script import run_interceptors

    return InterceptRun(run_interceptors(given, script, user), user)
