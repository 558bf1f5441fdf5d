"""README "Scripting a guest" and "Conformance suite": each snippet marked
`<!-- example: PATH -->` is the example file PATH byte for byte; the files
themselves run in test_examples.py, test_plugin.py, test_script.py and
test_conformance.py."""

from __future__ import annotations

import re

from conftest import ROOT

MARKED = re.compile(r"<!-- example: (\S+) -->\n```python\n(.*?)```\n", re.S)


def test_readme_snippets_are_the_example_files() -> None:
    found = MARKED.findall((ROOT / "README.md").read_text())
    assert {path for path, _ in found} == {
        "examples/intercept_library.py", "examples/fail_third_write.py",
        "examples/frozen_clock.py", "examples/test_guest.py",
        "examples/conformance_subset.py",
    }
    for path, body in found:
        assert body == (ROOT / path).read_text(), f"README snippet differs from {path}"


def test_every_example_is_run_by_a_test() -> None:
    tests = "".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py")
                    if p.name != "test_readme_examples.py")
    for example in (ROOT / "examples").glob("*.py"):
        assert example.name in tests, f"no test runs examples/{example.name}"
