"""The boot path's struct decoders (tender.elfwire, manifest.decode) against
the project's libraries (pyelftools, cstruct) on mutated and truncated
guests: same verdict, same fields, same error message."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from conftest import guest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tender import elf, elfwire
from tender import manifest as mft
from tender.errors import TenderError
from tender.fuzz.mutate import mutate, truncate

SEEDS = ("hello", "blk", "net")
MEM = 512 << 20


def _outcome(fn: object, *args: object, **kw: object) -> object:
    """A result, or the error's class and message: what the user would see."""
    try:
        return fn(*args, **kw)  # type: ignore[operator]
    except TenderError as e:
        return (type(e).__name__, e.message)


def _loader(data: bytes, reference: bool) -> list[object]:
    """Every boot-path decode of `data`, each with its own verdict."""
    out = [
        _outcome(elf.read_notes, data, "k.hvt", reference=reference),
        _outcome(elf.plan_load, data, "k.hvt", MEM, reference=reference),
    ]
    notes = out[0]
    if isinstance(notes, elf.Notes):
        out.append(_outcome(mft.decode, notes.manifest_payload, reference=reference))
    return out


@pytest.fixture(scope="module")
def seeds() -> list[bytes]:
    return [Path(guest(name)).read_bytes() for name in SEEDS]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, len(SEEDS) - 1), seed=st.integers(0, 2**32 - 1))
def test_fast_decoders_match_the_libraries_on_mutants(seeds: list[bytes], which: int,
                                                      seed: int) -> None:
    data = mutate(seeds[which], random.Random(seed)).data
    assert _loader(data, reference=False) == _loader(data, reference=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, len(SEEDS) - 1), seed=st.integers(0, 2**32 - 1))
def test_fast_decoders_match_the_libraries_on_truncations(seeds: list[bytes], which: int,
                                                          seed: int) -> None:
    data = truncate(seeds[which], random.Random(seed))
    assert _loader(data, reference=False) == _loader(data, reference=True)


@given(rest=st.binary(min_size=58, max_size=58))
def test_ehdr_fields_match_pyelftools(rest: bytes) -> None:
    # tender.elf checks magic, class and data before decoding (pyelftools
    # rejects an unknown EI_DATA itself, so these six bytes stay fixed).
    raw = b"\x7fELF\x02\x01" + rest
    assert elfwire.ehdr(raw) == elfwire.ehdr(raw, reference=True)


@given(raw=st.binary(min_size=56, max_size=56))
def test_phdr_fields_match_pyelftools(raw: bytes) -> None:
    assert elfwire.phdr(raw) == elfwire.phdr(raw, reference=True)


@given(count=st.integers(0, 4), body=st.binary(max_size=4 * mft.ENTRY_SIZE + 16),
       version=st.sampled_from([1, 1, 1, 0, 2]))
def test_manifest_decode_matches_cstruct(count: int, body: bytes, version: int) -> None:
    payload = version.to_bytes(4, "little") + count.to_bytes(4, "little") + body
    assert _outcome(mft.decode, payload) == _outcome(mft.decode, payload, reference=True)


def test_seed_guests_decode_the_same_and_are_valid(seeds: list[bytes]) -> None:
    for data in seeds:
        fast = _loader(data, reference=False)
        assert fast == _loader(data, reference=True)
        assert isinstance(fast[2], mft.Manifest) and isinstance(fast[1], elf.LoadPlan)


def test_boot_path_imports_neither_library() -> None:
    """The decoders exist so that a run need not import these; tooling does."""
    import subprocess

    code = ("import sys, tender.cli, tender.vm, tender.elf as e, tender.manifest as m\n"
            f"d = open({guest('hello')!r}, 'rb').read()\n"
            "m.decode(e.read_notes(d, 'k').manifest_payload); e.plan_load(d, 'k', 1 << 29)\n"
            "bad = [n for n in sys.modules if n.split('.')[0] in ('elftools', 'cstruct')]\n"
            "print(bad)\n"
            "m.decode(e.read_notes(d, 'k', reference=True).manifest_payload, reference=True)\n"
            "print(sorted({n.split('.')[0] for n in sys.modules} & {'elftools', 'cstruct'}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "['cstruct', 'elftools']"
