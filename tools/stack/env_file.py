"""The client settings of a stack profile as a file of `KEY=value` lines
(`secure.env`, `cluster.env`), which a POSIX shell reads with `set -a; . FILE;
set +a`. Such a file names secrets by their *_FILE settings only."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path


def write_env_file(path: Path, env: Mapping[str, str], header: str) -> Path:
    """`header` says which profile's settings these are (a comment line)."""
    lines = "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items())
    path.write_text(f"# {header}\n{lines}")
    return path


def how_to_use(path: Path) -> str:
    return f"set -a; . {shlex.quote(str(path))}; set +a"
