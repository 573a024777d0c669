"""Released schema versions live in `schemas/history/<Name>.v<N>.avsc`. The
working tree's `schemas/<Name>.avsc` must stay fully compatible with the last
released version; `release` snapshots a changed schema as the next version."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.compatibility import full_compatibility_problems
from schemas.registry import SCHEMA_DIR

_VERSIONED = re.compile(r"^(?P<name>\w+)\.v(?P<version>\d+)\.avsc$")


@dataclass
class SchemaCheck:
    name: str
    released_version: int | None
    changed: bool
    problems: list[str] = field(default_factory=list)


def released_versions(name: str, directory: Path = SCHEMA_DIR) -> list[tuple[int, Path]]:
    found = []
    for path in (directory / "history").glob(f"{name}.v*.avsc"):
        match = _VERSIONED.match(path.name)
        if match and match["name"] == name:
            found.append((int(match["version"]), path))
    return sorted(found)


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def check(directory: Path = SCHEMA_DIR) -> list[SchemaCheck]:
    results = []
    for path in sorted(directory.glob("*.avsc")):
        current = _load(path)
        versions = released_versions(current["name"], directory)
        if not versions:
            results.append(SchemaCheck(current["name"], None, changed=True))
            continue
        version, released_path = versions[-1]
        released = _load(released_path)
        results.append(
            SchemaCheck(
                current["name"],
                version,
                changed=current != released,
                problems=full_compatibility_problems(current, released),
            )
        )
    return results


def release(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Snapshot every changed, compatible schema as its next version."""
    written = []
    for result in check(directory):
        if result.problems:
            raise ValueError(f"{result.name} is not compatible: {result.problems}")
        if result.changed:
            version = (result.released_version or 0) + 1
            target = directory / "history" / f"{result.name}.v{version}.avsc"
            target.parent.mkdir(exist_ok=True)
            target.write_text((directory / f"{result.name}.avsc").read_text(encoding="utf-8"))
            written.append(target)
    return written
