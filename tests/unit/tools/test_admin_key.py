"""`make run`'s admin key: made once with mode 0600, reused, tightened when
looser, refused when it is not a plain file of ours, and handed to the worker."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from core.settings import Settings
from ops.admin_key import find_api_key
from tools.admin_key import announcement, stack_admin_key, with_admin_key


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_first_run_makes_a_key_only_its_owner_can_read(tmp_path: Path) -> None:
    key = stack_admin_key(tmp_path / ".stack")
    assert key.created and key.path == tmp_path / ".stack" / "admin-key"
    assert mode(key.path) == 0o600
    assert len(key.value) >= 40 and key.path.read_text().strip() == key.value


def test_later_runs_reuse_it(tmp_path: Path) -> None:
    first = stack_admin_key(tmp_path)
    again = stack_admin_key(tmp_path)
    assert again.value == first.value and not again.created and not again.tightened


def test_a_looser_file_is_tightened(tmp_path: Path) -> None:
    first = stack_admin_key(tmp_path)
    os.chmod(first.path, 0o644)
    again = stack_admin_key(tmp_path)
    assert again.tightened and again.value == first.value
    assert mode(first.path) == 0o600


def test_a_file_of_someone_else_or_not_a_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack_admin_key(tmp_path)
    monkeypatch.setattr(os, "getuid", lambda: os.stat(tmp_path).st_uid + 1)
    with pytest.raises(PermissionError, match="not to you"):
        stack_admin_key(tmp_path)
    monkeypatch.undo()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "target").write_text("k")
    (elsewhere / "admin-key").symlink_to(elsewhere / "target")
    with pytest.raises(PermissionError, match="not a plain file"):
        stack_admin_key(elsewhere)


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "admin-key").write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        stack_admin_key(tmp_path)


def test_the_worker_gets_it_beside_the_configured_keys_and_the_cli_finds_it(
    tmp_path: Path,
) -> None:
    env = {"DOCSTREAM_STACK_DIR": str(tmp_path), "DOCSTREAM_API_KEYS": "ops-key"}
    configured = Settings.from_env(env)
    key = stack_admin_key(configured.stack_dir)
    assert with_admin_key(configured, key.value).api.api_keys == {"ops-key", key.value}
    bare = Settings.from_env({"DOCSTREAM_STACK_DIR": str(tmp_path)})
    assert find_api_key(None, bare) == key.value


def test_the_announcement_shows_a_new_key_once_and_how_to_use_it(tmp_path: Path) -> None:
    new = stack_admin_key(tmp_path)
    assert new.value in announcement(new)
    reused = announcement(stack_admin_key(tmp_path))
    assert new.value not in reused
    assert f'-H "X-API-Key: $(cat {new.path})"' in reused
