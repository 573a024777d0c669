"""The local stack's admin key: `make run` opens the worker's admin routes
(`docstream status`, `rebuild`, `replay`, /admin/…) with a key of its own,
made once and kept in the stack's data folder (`.stack/admin-key`, git-ignored),
readable by its owner only. The CLI finds it there by itself (ops/admin_key.py)."""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass, replace
from pathlib import Path

from core.settings import Settings
from ops.admin_key import stack_key_path


@dataclass(frozen=True)
class AdminKey:
    value: str
    path: Path
    created: bool = False
    tightened: bool = False


def stack_admin_key(stack_dir: Path) -> AdminKey:
    """The key in `stack_dir`, made (mode 0600) if there is none yet."""
    path = stack_key_path(stack_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two starts at once cannot both write; 0600 from the first byte.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _existing(path)
    value = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return AdminKey(value, path, created=True)


def _existing(path: Path) -> AdminKey:
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode):
        raise PermissionError(f"{path} is not a plain file: remove it, a new key is made")
    if info.st_uid != os.getuid():
        raise PermissionError(
            f"{path} belongs to user id {info.st_uid}, not to you: remove it, a new key is made"
        )
    tightened = bool(stat.S_IMODE(info.st_mode) & 0o077)
    if tightened:
        os.chmod(path, 0o600)
    value = path.read_text().strip()
    if not value:
        raise ValueError(f"{path} is empty: remove it, a new key is made")
    return AdminKey(value, path, tightened=tightened)


def with_admin_key(settings: Settings, key: str) -> Settings:
    """The settings with `key` among the API's keys (those configured stay)."""
    return replace(settings, api=replace(settings.api, api_keys=settings.api.api_keys | {key}))


def announcement(key: AdminKey) -> str:
    """What `make run` prints once at start: the key if new, and how to use it."""
    lines = []
    if key.created:
        lines.append(f"[run] new admin key for this stack: {key.value}")
    if key.tightened:
        lines.append(f"[run] {key.path} was readable by others: now mode 0600")
    lines.append(
        f"[run] admin key in {key.path} (mode 0600): docstream status, rebuild and replay "
        f'find it by themselves; with curl: -H "X-API-Key: $(cat {key.path})"'
    )
    return "\n".join(lines)
