"""Which admin key the CLI sends (`docstream status`, `rebuild`, `replay`).

One place, in this order: the command's `--api-key`; else the first (in sort order) of
DOCSTREAM_API_KEYS; else the key `make run` keeps for the local stack in its
data folder (`.stack/admin-key`, tools/admin_key.py). A client's lookup only:
a worker never reads that file, so a server with no key configured keeps its
admin routes closed."""

from __future__ import annotations

from pathlib import Path

from core.settings import Settings

KEY_FILE = "admin-key"


def stack_key_path(stack_dir: Path) -> Path:
    return stack_dir / KEY_FILE


def find_api_key(explicit: str | None, settings: Settings) -> str:
    """The key to send, or "" when there is none (the worker then answers 401)."""
    if explicit:
        return explicit
    if settings.api.api_keys:
        return min(settings.api.api_keys)
    try:
        return stack_key_path(settings.stack_dir).read_text().strip()
    except FileNotFoundError:
        return ""
