"""Files that hold a key or a password: readable by their owner only (mode
0600) from the first byte, in folders only their owner can open (0700)."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700


def private_folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(PRIVATE_FOLDER)
    return path


def write_private(path: Path, data: str | bytes) -> Path:
    """Write `data` to `path`, mode 0600. The file is created with that mode
    rather than chmod-ed once the secret is in it, and an existing file (which
    keeps its mode through a plain write) is narrowed before it is written."""
    raw = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as file:
        os.fchmod(fd, PRIVATE_FILE)
        file.write(raw)
    return path
