"""Whether the vCPU thread is running the user's own Python: an interceptor,
or a --script file as it loads.

A SIGINT/SIGTERM that finds it there must not wait for it (an interceptor
that blocks would keep an orchestrator's stop waiting for ever), and none of
the tender's own state is half-updated there, so the signal handler raises
Interrupted into it. Everywhere else the handler only asks the run to stop."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tender.errors import Interrupted


class UserCode:
    def __init__(self) -> None:
        self._inside = False
        self._signum = 0

    @contextmanager
    def inside(self, yes: bool = True) -> Iterator[None]:
        """Around a call into user code (yes) or, from within it, back into
        the tender's (no: call.proceed() runs the normal handler whole)."""
        before, self._inside = self._inside, yes
        try:
            self.check()
            yield
        finally:
            self._inside = before

    def check(self) -> None:
        if self._inside and self._signum:
            raise Interrupted(self._signum)

    def interrupt(self, signum: int) -> None:
        """From a signal handler on the vCPU thread (the CLI's latch)."""
        self._signum = signum
        self.check()
