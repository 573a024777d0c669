"""The local-stack backend: the addresses it names, and what it stops."""

from __future__ import annotations

from unittest.mock import MagicMock, create_autospec

import pytest

import tests.services as services_module
from core.settings import Settings
from tests.services import start_services
from tests.services.local import LocalServices, start_local
from tools.stack.local import LocalStack


def fake_stack(started: list[str]) -> MagicMock:
    stack = create_autospec(LocalStack, instance=True)
    stack.up.return_value = started
    stack.down.side_effect = lambda only=None: list(only or [])
    return stack


def test_the_local_env_names_the_configured_addresses_and_no_qdrant_server() -> None:
    settings = Settings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092",
            "NEO4J_URI": "bolt://127.0.0.1:17687",
            "QDRANT_URL": "http://127.0.0.1:6333",
        }
    )
    services = start_local(settings, stack_factory=lambda s: fake_stack([]))
    assert services.env == {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092",
        "NEO4J_URI": "bolt://127.0.0.1:17687",
    }
    assert services.backend == "local"


def test_close_stops_only_what_the_session_started() -> None:
    stack = fake_stack(["neo4j"])
    services = start_local(Settings(), stack_factory=lambda s: stack)
    stack.up.assert_called_once_with(log=True)
    services.close()
    stack.down.assert_called_once_with(only=["neo4j"])


def test_stop_and_start_one_service() -> None:
    stack = fake_stack([])
    services = LocalServices(stack, Settings(), [])
    assert services.stop("kafka")
    stack.down.assert_called_with(only=["kafka"])
    stack.down.side_effect = lambda only=None: []  # not the stack's own process
    assert not services.stop("kafka")
    services.start("kafka", timeout_s=5)
    stack.start.assert_called_once_with("kafka", timeout_s=5)


def test_start_services_dispatches_on_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    chosen: list[Settings] = []
    local = LocalServices(fake_stack([]), Settings(), [])

    def fake_start_local(settings: Settings) -> LocalServices:
        chosen.append(settings)
        return local

    monkeypatch.setattr(services_module, "start_local", fake_start_local)
    env = {"DOCSTREAM_TEST_SERVICES": "local", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092"}
    assert start_services(env, log=lambda line: None) is local
    assert chosen[0].kafka.bootstrap_servers == "127.0.0.1:19092"
