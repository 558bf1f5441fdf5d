"""Whether the vCPU thread is running the user's own Python: an interceptor,
or a --script file as it loads.

A SIGINT/SIGTERM that finds it there must not wait for it (an interceptor
that blocks would keep an orchestrator's stop waiting for ever), and none of
the tender's own state is half-updated there, so the signal handler raises
Interrupted into it. Everywhere else the handler only asks the run to stop."""

from __future__ import annotations

from tender.errors import Interrupted


class UserCode:
    def __init__(self) -> None:
        self._inside = False
        self._signum = 0

    def inside(self, yes: bool = True) -> _Inside:
        """Around a call into user code (yes) or, from within it, back into
        the tender's (no: call.proceed() runs the normal handler whole)."""
        return _Inside(self, yes)

    def check(self) -> None:
        if self._inside and self._signum:
            raise Interrupted(self._signum)

    def interrupt(self, signum: int) -> None:
        """From a signal handler on the vCPU thread (the CLI's latch)."""
        self._signum = signum
        self.check()


class _Inside:
    """UserCode.inside's context manager: a class, as contextlib (~1 ms of a
    boot, issue 10) is not imported on the boot path."""

    __slots__ = ("_before", "_user", "_yes")

    def __init__(self, user: UserCode, yes: bool) -> None:
        self._user = user
        self._yes = yes
        self._before = False

    def __enter__(self) -> None:
        user = self._user
        self._before, user._inside = user._inside, self._yes
        try:
            user.check()
        except BaseException:
            user._inside = self._before
            raise

    def __exit__(self, *_exc: object) -> None:
        self._user._inside = self._before
