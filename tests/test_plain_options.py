"""Options whose pattern is a plain prefix are matched without re
(tender.modules.options.plain): held to re.fullmatch, which stays the
reference, on every such pattern of the module table and any argument."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from tender import modules
from tender.modules.options import plain, plain_match

PATTERNS = sorted({o.pattern for o in modules.options() if isinstance(o.pattern, str)})
PLAIN = [p for p in PATTERNS if plain(p) is not None]


def test_the_common_options_are_plain_and_the_rest_are_not() -> None:
    assert {"(?s)--mem=(.*)", "--gdb", "(?s)--disk=(.+)"} <= set(PLAIN)
    # A pattern with a real grammar (device names, choices) stays re's.
    assert plain(r"--wx=(on|off)") is None
    assert not any(p.startswith("--block:") or p.startswith("--net:") for p in PLAIN)


def _reference(pattern: str, arg: str) -> tuple[str, ...] | None:
    m = re.fullmatch(pattern, arg)
    return None if m is None else (m[0], *m.groups())


@settings(max_examples=300)
@given(pattern=st.sampled_from(PLAIN), tail=st.text(max_size=12),
       cut=st.integers(min_value=0, max_value=40))
def test_plain_match_is_re_fullmatch(pattern: str, tail: str, cut: int) -> None:
    fast = plain(pattern)
    assert fast is not None
    lit = fast[0]
    # Arguments near the literal: cut short, exact, extended (newlines too).
    for arg in (lit[:cut], lit, lit + tail, tail + lit, lit + "\n" + tail):
        assert plain_match(*fast, arg) == _reference(pattern, arg), arg


def test_an_option_accepts_the_same_groups_either_way() -> None:
    opt = next(o for o in modules.options() if o.pattern == "(?s)--mem=(.*)")
    m = opt.accepts("--mem=512")
    assert m is not None and m[0] == "--mem=512" and m[1] == "512"
    assert opt.accepts("--memory=1") is None
