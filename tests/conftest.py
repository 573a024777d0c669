"""For every test: nothing is read from beside the checkout, and the run ends
with one line per optional input it went without (tests/optional.py).

The guard is an audit hook (PEP 578) on the events Python raises when a file
is opened or a folder listed. A path in the checkout's parent folder but
outside the checkout is refused (the call raises `OutsideCheckout`, a
PermissionError) and remembered, and the run fails at its end even when the
test caught the error. Hidden folders beside the checkout (a home's `.cache`,
`.m2`, a Python installation under `.pyenv`) are tools, not data, and the
paths an optional input's setting names are allowed."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests import optional

REPO = Path(__file__).resolve().parents[1]
WATCHED = frozenset({"open", "os.listdir", "os.scandir"})


class OutsideCheckout(PermissionError):
    """A test tried to read beside the checkout."""


class Guard:
    def __init__(self, repo: Path, allowed: Sequence[Path]) -> None:
        self.parent = str(repo.parent)
        self.repo = str(repo)
        self.allowed = [str(p) for p in allowed]
        self.refused: list[str] = []
        # Temporary files are the tests' own. Where the temporary folder is the
        # checkout's parent itself, only what tempfile and pytest make there is.
        temp = str(Path(tempfile.gettempdir()).resolve())
        self.temp_names: tuple[str, ...] = ()
        if temp == self.parent:
            self.temp_names = ("tmp", "pytest-of-")
        elif not _under(self.parent, temp):
            self.allowed.append(temp)

    def outside(self, path: str) -> bool:
        """True for a path beside the checkout that no setting named."""
        full = os.path.abspath(path)
        if not full.startswith(self.parent + os.sep) or _under(full, self.repo):
            return False
        first = full[len(self.parent) + 1 :].split(os.sep, 1)[0]
        if first.startswith(".") or (self.temp_names and first.startswith(self.temp_names)):
            return False
        real = os.path.realpath(full)
        return not any(_under(full, a) or _under(real, a) for a in self.allowed)

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if event not in WATCHED or not args:
            return
        path = args[0]
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        elif isinstance(path, os.PathLike):
            path = os.fspath(path)
        if isinstance(path, str) and self.outside(path):
            self.refused.append(path)
            raise OutsideCheckout(
                f"a test read {path}, outside the checkout: tests carry or make their data "
                "(an optional input comes through its setting: tests/optional.py)"
            )


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


GUARD = Guard(REPO, optional.allowed_paths())
# Audit hooks cannot be removed: the guard stays for the whole process.
sys.addaudithook(GUARD)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if GUARD.refused:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for item in optional.INPUTS:
        if item.name in optional.MISSING:
            terminalreporter.write_line(f"optional input missing: {item.skip_reason()}")
    if GUARD.refused:
        terminalreporter.write_line(
            f"FAILED: tests read outside the checkout: {sorted(set(GUARD.refused))}", red=True
        )
