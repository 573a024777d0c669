"""The guard of tests/conftest.py: a test that reads beside the checkout fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import GUARD, REPO, Guard, OutsideCheckout


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    (tmp_path / "checkout" / "tests").mkdir(parents=True)
    (tmp_path / "shared" / "datasets").mkdir(parents=True)
    (tmp_path / "tools" / "qdrant").mkdir(parents=True)
    return tmp_path


def test_a_path_beside_the_checkout_is_outside_and_the_checkout_is_not(layout: Path) -> None:
    guard = Guard(layout / "checkout", [])
    assert guard.outside(str(layout / "shared" / "datasets" / "corpus.jsonl"))
    assert guard.outside(str(layout / "checkout" / ".." / "shared"))
    assert not guard.outside(str(layout / "checkout" / "tests" / "x.py"))
    assert not guard.outside(str(layout / ".cache" / "uv" / "wheel"))
    assert not guard.outside("/proc/self/status")


def test_a_path_a_setting_names_is_allowed_even_through_a_link(layout: Path) -> None:
    (layout / "bin").symlink_to(layout / "tools" / "qdrant")
    guard = Guard(layout / "checkout", [layout / "tools" / "qdrant"])
    assert not guard.outside(str(layout / "tools" / "qdrant" / "qdrant"))
    assert not guard.outside(str(layout / "bin" / "qdrant"))
    assert guard.outside(str(layout / "shared" / "datasets"))


def test_the_guard_is_installed_and_refuses_a_read_beside_the_checkout() -> None:
    sibling = REPO.parent / "docstream-guard-probe" / "data.txt"
    with pytest.raises(OutsideCheckout, match="outside the checkout"):
        sibling.read_text()
    # The refusal is remembered so that the run fails even when a test catches
    # it; this test wanted it, so it is forgotten here.
    assert GUARD.refused[-1] == str(sibling)
    GUARD.refused.pop()


def test_events_other_than_reads_and_other_arguments_pass(layout: Path) -> None:
    guard = Guard(layout / "checkout", [])
    guard("os.remove", (str(layout / "shared"),))
    guard("open", (3, "r", 0))  # a file descriptor
    with pytest.raises(OutsideCheckout):
        guard("os.listdir", (str(layout / "shared").encode(),))


def test_a_run_whose_test_caught_the_refusal_still_fails(tmp_path: Path) -> None:
    probe = tmp_path / "test_probe.py"
    probe.write_text(
        "from pathlib import Path\n"
        f"def test_reads_beside_the_checkout():\n"
        f"    try:\n"
        f"        Path({str(REPO.parent / 'docstream-guard-probe')!r}).read_text()\n"
        f"    except OSError:\n"
        f"        pass\n"
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            str(probe),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 passed" in run.stdout and "tests read outside the checkout" in run.stdout
