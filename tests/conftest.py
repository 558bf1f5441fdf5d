"""Shared test fixtures: real guests on real KVM, through the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUESTS = ROOT / "guests" / "build"
KVM = Path("/dev/kvm")


def kvm_usable() -> bool:
    return KVM.exists() and os.access(KVM, os.R_OK | os.W_OK)


def require_kvm() -> None:
    """Skip without /dev/kvm, unless PYTENDER_REQUIRE_KVM=1 makes that a failure."""
    if kvm_usable():
        return
    if os.environ.get("PYTENDER_REQUIRE_KVM") == "1":
        pytest.fail("PYTENDER_REQUIRE_KVM=1 but /dev/kvm is not usable")
    pytest.skip("/dev/kvm is not present or not accessible")


def kvm_is_pvm() -> bool:
    """The kvm_pvm module (not VT-x/SVM): guest SSE arithmetic fails there and
    writes to read-only memory arrive as MMIO exits."""
    return Path("/sys/module/kvm_pvm").exists()


@dataclass(frozen=True)
class Run:
    status: int
    stdout: bytes
    stderr: bytes

    @property
    def out(self) -> str:
        return self.stdout.decode(errors="replace")

    @property
    def err(self) -> str:
        return self.stderr.decode(errors="replace")

    @property
    def output(self) -> str:
        return self.out + self.err


def guest(name: str) -> str:
    path = GUESTS / f"{name}.hvt"
    assert path.exists(), f"guest {name} not built (make -C guests)"
    return str(path)


def tender_cmd(*args: str, hvt: bool = False) -> list[str]:
    if hvt:
        return [sys.executable, "-c", "import sys; sys.argv[0] = 'pytender-hvt'; "
                "from tender.cli import main_hvt; main_hvt()", *args]
    return [sys.executable, "-m", "tender.cli", "run", *args]


def run_tender(*args: str, timeout: float = 120, hvt: bool = False,
               stdin: int | None = subprocess.DEVNULL) -> Run:
    proc = subprocess.run(
        tender_cmd(*args, hvt=hvt), capture_output=True, timeout=timeout, stdin=stdin,
        cwd=ROOT,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="session", autouse=True)
def built_guests() -> None:
    """Build our test guests once if they are missing or stale."""
    subprocess.run(["make", "-s", "-C", str(ROOT / "guests"), f"PYTHON={sys.executable}"],
                   check=True)


@pytest.fixture(params=["native", "python"])
def handlers(request: pytest.FixtureRequest) -> str:
    """Run a test with the native C handlers and with the Python reference."""
    return f"--handlers={request.param}"


@pytest.fixture
def kvm() -> None:
    require_kvm()
