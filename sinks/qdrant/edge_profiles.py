"""The profile of a Qdrant Edge shard (model, dimension, chunking): the engine
keeps no metadata of its own, so it lives beside the shard's folder as
`<name>.profile.json`, written whole and renamed over, like the pointer."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def profile_path(root: Path, name: str) -> Path:
    return root / f"{name}.profile.json"


def write_profile(path: Path, profile: dict[str, Any]) -> None:
    staged = path.with_suffix(".staged")
    staged.write_text(json.dumps(profile, sort_keys=True))
    os.replace(staged, path)


def read_profile(path: Path) -> dict[str, Any] | None:
    return dict(json.loads(path.read_text())) if path.exists() else None
