"""Which admin key the CLI sends: --api-key, else DOCSTREAM_API_KEYS' first,
else the local stack's key file; none at all is "", never an opened admin."""

from __future__ import annotations

from pathlib import Path

from core.settings import Settings
from ops.admin_key import find_api_key, stack_key_path


def settings(stack_dir: Path, keys: str = "") -> Settings:
    return Settings.from_env({"DOCSTREAM_STACK_DIR": str(stack_dir), "DOCSTREAM_API_KEYS": keys})


def test_the_key_file_lives_in_the_stack_folder(tmp_path: Path) -> None:
    assert stack_key_path(tmp_path) == tmp_path / "admin-key"
    assert stack_key_path(Path(".stack")) == Path(".stack/admin-key")


def test_discovery_order_flag_then_environment_then_stack_file(tmp_path: Path) -> None:
    stack_key_path(tmp_path).write_text("from-file\n")
    assert find_api_key("from-flag", settings(tmp_path, "b-env,a-env")) == "from-flag"
    assert find_api_key("", settings(tmp_path, "b-env,a-env")) == "a-env"
    assert find_api_key(None, settings(tmp_path)) == "from-file"


def test_no_key_anywhere_is_no_key(tmp_path: Path) -> None:
    assert find_api_key(None, settings(tmp_path)) == ""


def test_a_worker_with_no_key_configured_stays_closed(tmp_path: Path) -> None:
    """The file is the client's lookup: it adds nothing to a server's settings."""
    stack_key_path(tmp_path).write_text("from-file\n")
    assert settings(tmp_path).api.api_keys == frozenset()
