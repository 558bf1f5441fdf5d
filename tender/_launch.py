"""The native launcher's second step (csrc/launcher.c). It started the
interpreter with -I -S and appended to sys.path (after the standard
library, where site puts site-packages) the directories where this install
may keep its packages; tender was found there. If they also hold
every top-level module the tender may import from its dependencies, the
run goes on without site (issue 10: site, the .pth files and setuptools'
editable finder cost ~4 ms and pathlib/urllib/ipaddress on every start);
otherwise site runs after all, as under plain -I.

This is every launched boot's first tender import: os and sys only."""

from __future__ import annotations

import os
import sys

# Top-level modules of the runtime dependencies (pyproject.toml), imported
# on a boot or by a run's options; tests/test_launcher.py keeps the two lists
# in step.
NEEDS = frozenset({"_cffi_backend", "cffi", "elftools", "cstruct", "prometheus_client"})


def _names(path: str) -> frozenset[str]:
    """Top-level module names in a directory (packages, .py, extensions)."""
    try:
        return frozenset(entry.partition(".")[0] for entry in os.listdir(path))
    except OSError:
        return frozenset()


def settle(own: list[str], src: str) -> None:
    """`own`: the directories the launcher appended to sys.path, in order;
    `src`: the source tree among them (an editable install) or ""."""
    found = {p: _names(p) for p in own}
    # The source tree holds tender, already imported (its __path__ now
    # finds the submodules), and names (setup, tests, bench) that the
    # editable finder would not expose; a directory holding nothing of ours
    # (the prefix of a venv or a system install) is no package directory.
    sys.path[-len(own):] = [p for p in own if p != src and found[p] & (NEEDS | {"tender"})]
    if not NEEDS <= frozenset().union(*found.values()):
        import site

        site.main()
