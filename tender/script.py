"""--script=FILE.py: a Python file that defines `intercept = {...}`, for
people who drive the tender from the command line.

The file runs as a module of its own (not __main__), once per run, before
any device is opened; anything wrong with it is one InterceptError line."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import Any

from tender.abi import Hypercall
from tender.errors import InterceptError, Interrupted
from tender.intercept import Interceptor, interceptors
from tender.usercode import UserCode


def load_script(path: str, user: UserCode) -> dict[Hypercall, Interceptor]:
    if os.path.isdir(path):
        raise InterceptError(f"--script: {path}: is a directory")
    if not os.path.isfile(path):
        raise InterceptError(f"--script: {path}: no such file")
    name = "pytender_script_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InterceptError(f"--script: {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        with user.inside():
            spec.loader.exec_module(module)
    except Interrupted:
        raise
    except BaseException as exc:    # KeyboardInterrupt, SystemExit: still the script's error
        raise InterceptError(f"--script: {path}: raised {type(exc).__name__}: {exc}") from exc
    table = getattr(module, "intercept", None)
    if not isinstance(table, Mapping):
        raise InterceptError(f"--script: {path}: does not define intercept = "
                             "{Hypercall.NAME: function, ...}")
    try:
        return interceptors(table)
    except InterceptError as exc:
        raise InterceptError(f"--script: {path}: {exc.message}") from None


def run_interceptors(given: Mapping[Hypercall, Interceptor], script: str | None,
                     user: UserCode) -> dict[Hypercall, Interceptor]:
    """The run's table: the caller's plus the script's (never both for one
    hypercall: which one should answer would be a guess)."""
    if script is None:
        return dict(given)
    loaded: dict[Hypercall, Any] = load_script(script, user)
    both = sorted(nr.name for nr in given.keys() & loaded.keys())
    if both:
        raise InterceptError(f"--script: {script}: {', '.join(both)} intercepted twice "
                             "(by the script and by the caller)")
    return {**given, **loaded}
