"""Fetch a service's jars from Maven Central (through the local ~/.m2 cache) and
compile the project's small Java launchers. Both are skipped when up to date."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"


class StackBuildError(RuntimeError):
    pass


def _stamp_ok(dest: Path, source: Path) -> bool:
    stamp = dest / ".source-sha256"
    return stamp.exists() and stamp.read_text() == _digest(source)


def _write_stamp(dest: Path, source: Path) -> None:
    (dest / ".source-sha256").write_text(_digest(source))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
        raise StackBuildError(f"{what} failed ({' '.join(argv[:3])} …):\n{tail}")


def fetch_jars(pom_name: str, dest: Path) -> Path:
    """Copy the runtime dependencies of `assets/<pom_name>` into `dest`."""
    pom = ASSETS / pom_name
    if _stamp_ok(dest, pom):
        return dest
    if shutil.which("mvn") is None:
        raise StackBuildError("Maven (mvn) is not on PATH; it is needed to fetch Kafka and Neo4j")
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    _run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={dest}",
            "-DincludeScope=runtime",
        ],
        f"fetching jars for {pom_name}",
    )
    _write_stamp(dest, pom)
    return dest


def compile_launcher(source_name: str, classpath: Path, dest: Path) -> Path:
    source = ASSETS / source_name
    if _stamp_ok(dest, source):
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    _run(
        ["javac", "-d", str(dest), "-cp", f"{classpath}/*", str(source)], f"compiling {source_name}"
    )
    _write_stamp(dest, source)
    return dest
