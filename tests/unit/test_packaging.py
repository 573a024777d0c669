"""The wheel built from this repository holds what an installed docstream
needs and nothing of the checkout's own tooling.

It is built offline (setuptools' build backend, no isolation) from a copy of
the repository in a temporary folder, so no build/ or *.egg-info is left in
the checkout and none left there earlier can leak into the wheel."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNTIME = ("core", "schemas", "streams", "sinks", "api", "ops")
CHECKOUT_ONLY = ("tools", "bench", "tests")
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", ".stack*", ".*_cache", "__pycache__", "*.egg-info", "build", "reports"
)
BUILD = "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"


@dataclass(frozen=True)
class Wheel:
    path: Path
    names: frozenset[str]

    def read(self, name: str) -> str:
        with zipfile.ZipFile(self.path) as archive:
            return archive.read(name).decode()

    def dist_info(self, name: str) -> str:
        return self.read(next(n for n in self.names if n.endswith(f".dist-info/{name}")))


@pytest.fixture(scope="module")
def wheel() -> Iterator[Wheel]:
    with tempfile.TemporaryDirectory(prefix="docstream-wheel-") as scratch:
        source, dist = Path(scratch) / "source", Path(scratch) / "dist"
        shutil.copytree(REPO, source, ignore=NOT_SOURCE)
        built = subprocess.run(
            [sys.executable, "-c", BUILD, str(dist)],
            cwd=source,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert built.returncode == 0, built.stderr[-3000:]
        path = dist / built.stdout.strip().splitlines()[-1]
        with zipfile.ZipFile(path) as archive:
            names = frozenset(archive.namelist())
        yield Wheel(path, names)


def repo_files(pattern: str) -> set[str]:
    found = set()
    for package in RUNTIME:
        for path in (REPO / package).rglob(pattern):
            if "__pycache__" not in path.parts:
                found.add(path.relative_to(REPO).as_posix())
    return found


def test_the_wheel_carries_every_schema_and_the_released_history(wheel: Wheel) -> None:
    schemas = repo_files("*.avsc")
    assert {s for s in schemas if s.startswith("schemas/history/")}, "no history to check"
    assert schemas - wheel.names == set(), "schemas missing from the wheel"


def test_the_wheel_carries_the_search_page(wheel: Wheel) -> None:
    pages = repo_files("*.html")
    assert "api/static/index.html" in pages
    assert pages - wheel.names == set(), "static files missing from the wheel"


def test_the_wheel_carries_every_module_of_every_runtime_package(wheel: Wheel) -> None:
    modules = repo_files("*.py")
    assert {m.split("/", 1)[0] for m in modules} == set(RUNTIME)
    assert modules - wheel.names == set(), "runtime modules missing from the wheel"


def test_the_wheel_holds_nothing_of_the_checkout_tooling(wheel: Wheel) -> None:
    tops = {name.split("/", 1)[0] for name in wheel.names}
    assert not tops & set(CHECKOUT_ONLY)
    assert tops - {n for n in tops if n.endswith(".dist-info")} == set(RUNTIME)


def test_the_console_script_is_the_cli(wheel: Wheel) -> None:
    entry_points = configparser.ConfigParser()
    entry_points.read_string(wheel.dist_info("entry_points.txt"))
    assert dict(entry_points["console_scripts"]) == {"docstream": "ops.cli:main"}


PROBE = """
import json
from schemas.registry import SCHEMA_DIR, default_registry, load_schema
registry = default_registry()
history = sorted((SCHEMA_DIR / "history").glob("*.avsc"))
known = [p.name for p in history if registry.by_fingerprint(load_schema(p).fingerprint)]
print(json.dumps({"dir": str(SCHEMA_DIR), "names": registry.names(), "history": known}))
"""


def test_the_installed_schemas_load_from_the_wheel(wheel: Wheel) -> None:
    """What the runtime reads at run time (schemas/registry.py), read from the
    unpacked wheel, outside the checkout."""
    with tempfile.TemporaryDirectory(prefix="docstream-site-") as site:
        with zipfile.ZipFile(wheel.path) as archive:
            archive.extractall(site)
        probe = subprocess.run(
            [sys.executable, "-c", PROBE],
            cwd=site,
            env={**os.environ, "PYTHONPATH": site},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert probe.returncode == 0, probe.stderr[-3000:]
        loaded = json.loads(probe.stdout)
    assert Path(loaded["dir"]).is_relative_to(Path(site).resolve())
    assert loaded["names"] == sorted(p.stem for p in (REPO / "schemas").glob("*.avsc"))
    history = sorted(p.name for p in (REPO / "schemas" / "history").glob("*.avsc"))
    assert loaded["history"] == history


def test_the_image_copies_the_runtime_packages_and_nothing_else() -> None:
    """The Dockerfile's build stage installs the wheel from what it copied: the
    runtime packages and the project files, not the checkout's tooling."""
    copied = set()
    for line in (REPO / "Dockerfile").read_text().splitlines():
        command, *words = line.split() or [""]
        flags = [w for w in words if w.startswith("--")]
        if command == "COPY" and not any(f.startswith("--from") for f in flags):
            copied |= {w for w in words[:-1] if w not in flags}
    assert copied == {"pyproject.toml", "README.md", *RUNTIME}
