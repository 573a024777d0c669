"""The container backend without a Docker engine: which services are used as
configured and which are launched, the environment each one produces, stop and
start for the fault scenarios, and the clean-up. Containers are fakes; the
testcontainers classes are autospecced, so a method that does not exist in the
installed testcontainers fails here."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any
from unittest.mock import MagicMock, create_autospec

import pytest

import tests.services.containers as containers
from core.settings import Settings
from tests.services.choice import ServicesError
from tests.services.containers import (
    ContainerHandle,
    ContainerServices,
    Recipe,
    Running,
    container_module,
    recipes,
    start_containers,
)


class FakeContainer:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name, self.up = log, name, True

    def stop(self) -> None:
        self.log.append(f"stop {self.name}")
        self.up = False

    def start(self) -> None:
        self.log.append(f"start {self.name}")
        self.up = True

    def remove(self) -> None:
        self.log.append(f"remove {self.name}")


def launched(name: str, env: dict[str, str], log: list[str]) -> Running:
    container = FakeContainer(log, name)
    return Running(name, env, f"{name}-address", lambda: container.up, container)


def recipe(
    name: str, log: list[str], answering: bool | None, env: dict[str, str] | None = None
) -> Recipe:
    """`answering` None: nothing configured for this service."""
    configured = (
        None
        if answering is None
        else Running(
            name, {f"{name.upper()}_ADDRESS": "configured"}, "configured", lambda: answering
        )
    )

    def launch() -> Running:
        log.append(f"launch {name}")
        return launched(name, env or {f"{name.upper()}_ADDRESS": "container"}, log)

    return Recipe(name, configured, launch)


def test_services_answering_at_the_configured_address_are_used_as_they_are() -> None:
    log: list[str] = []
    services = start_containers(
        [recipe("kafka", log, True), recipe("neo4j", log, False), recipe("qdrant", log, None)],
        log=lambda line: None,
    )
    assert log == ["launch neo4j", "launch qdrant"]
    assert services.env == {
        "KAFKA_ADDRESS": "configured",
        "NEO4J_ADDRESS": "container",
        "QDRANT_ADDRESS": "container",
    }


def test_the_env_mapping_merges_every_service() -> None:
    log: list[str] = []
    services = start_containers(
        [
            recipe("kafka", log, False, {"KAFKA_BOOTSTRAP_SERVERS": "localhost:4001"}),
            recipe(
                "neo4j",
                log,
                False,
                {"NEO4J_URI": "bolt://localhost:4002", "NEO4J_USER": "u", "NEO4J_PASSWORD": "p"},
            ),
            recipe("qdrant", log, None, {"QDRANT_URL": "http://localhost:4003"}),
        ],
        log=lambda line: None,
    )
    assert services.env == {
        "KAFKA_BOOTSTRAP_SERVERS": "localhost:4001",
        "NEO4J_URI": "bolt://localhost:4002",
        "NEO4J_USER": "u",
        "NEO4J_PASSWORD": "p",
        "QDRANT_URL": "http://localhost:4003",
    }


def test_a_failed_start_removes_the_containers_already_started() -> None:
    log: list[str] = []

    def broken() -> Running:
        raise RuntimeError("image not found")

    with pytest.raises(RuntimeError, match="image not found"):
        start_containers(
            [recipe("kafka", log, False), Recipe("neo4j", None, broken)], log=lambda line: None
        )
    assert log == ["launch kafka", "remove kafka"]


def two_services(log: list[str]) -> ContainerServices:
    return start_containers(
        [recipe("kafka", log, False), recipe("neo4j", log, True)], log=lambda line: None
    )


def test_stop_and_start_one_container_of_the_session() -> None:
    log: list[str] = []
    services = two_services(log)
    assert services.stop("kafka")
    assert not services.stop("kafka"), "already stopped"
    assert [(s.name, s.state, s.pid) for s in services.status()] == [
        ("kafka", "stopped", None),
        ("neo4j", "external", None),
    ]
    services.start("kafka", timeout_s=1)
    assert log[-2:] == ["stop kafka", "start kafka"]
    assert services.status()[0].state == "ready"


def test_down_stops_only_the_sessions_own_containers_as_the_local_stack_does() -> None:
    log: list[str] = []
    services = two_services(log)
    assert services.down(only=["neo4j"]) == [], "an external Neo4j is not ours to stop"
    assert services.down(only=["kafka"]) == ["kafka"]
    assert services.down() == []


def test_a_service_that_does_not_come_back_is_a_clear_error() -> None:
    services = ContainerServices()
    services.running.append(
        Running("neo4j", {}, "bolt://x:1", lambda: False, FakeContainer([], "n"))
    )
    assert services.stop("neo4j")
    with pytest.raises(ServicesError, match=r"neo4j not answering at bolt://x:1 after 0s"):
        services.start("neo4j", timeout_s=0)
    with pytest.raises(ServicesError, match="no service named 'kafka'"):
        services.stop("kafka")


def test_close_removes_every_container_of_the_session_and_nothing_else() -> None:
    log: list[str] = []
    services = two_services(log)
    services.close()
    assert log == ["launch kafka", "remove kafka"]
    assert services.env == {}


def test_the_handle_stops_and_starts_the_same_container_and_removes_it_at_the_end() -> None:
    container = MagicMock()
    handle = ContainerHandle(container)
    handle.stop()
    container.get_wrapped_container.return_value.stop.assert_called_once_with(
        timeout=containers.STOP_TIMEOUT_S
    )
    handle.start()
    container.get_wrapped_container.return_value.start.assert_called_once_with()
    container.stop.assert_not_called()
    handle.remove()
    container.stop.assert_called_once_with()


def test_recipes_read_the_configured_addresses() -> None:
    settings = Settings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092",
            "NEO4J_URI": "bolt://127.0.0.1:17687",
        }
    )
    kafka, neo4j, qdrant = recipes(settings)
    assert kafka.configured is not None and neo4j.configured is not None
    assert kafka.configured.env == {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092"}
    assert neo4j.configured.env == {"NEO4J_URI": "bolt://127.0.0.1:17687"}
    assert qdrant.configured is None, "no QDRANT_URL: a Qdrant container is launched"
    with_url = recipes(Settings.from_env({"QDRANT_URL": "http://127.0.0.1:16333"}))[2]
    assert with_url.configured is not None
    assert with_url.configured.env == {"QDRANT_URL": "http://127.0.0.1:16333"}


def fake_module(monkeypatch: pytest.MonkeyPatch, name: str, cls: type, **returns: Any) -> Any:
    """testcontainers' module `name`, whose `cls` builds one autospecced container."""
    instance = create_autospec(cls, instance=True)
    for method, value in returns.items():
        getattr(instance, method).return_value = value
    constructor = MagicMock(return_value=instance)
    module = SimpleNamespace(**{cls.__name__: constructor})
    real: Callable[[str], ModuleType] = container_module
    monkeypatch.setattr(
        containers, "container_module", lambda wanted: module if wanted == name else real(wanted)
    )
    return constructor


def bound_ports(constructor: MagicMock) -> dict[int, int]:
    instance = constructor.return_value
    return {call.args[0]: call.args[1] for call in instance.with_bind_ports.call_args_list}


def test_kafka_runs_in_kraft_mode_on_a_fixed_host_port(monkeypatch: pytest.MonkeyPatch) -> None:
    from testcontainers.community.kafka import KafkaContainer

    kafka = fake_module(monkeypatch, "kafka", KafkaContainer, get_bootstrap_server="localhost:4101")
    running = containers.launch_kafka()
    kafka.assert_called_once_with(containers.KAFKA_IMAGE, port=containers.KAFKA_PORT)
    kafka.return_value.with_kraft.assert_called_once_with()
    assert list(bound_ports(kafka)) == [containers.KAFKA_PORT]
    kafka.return_value.start.assert_called_once_with()
    assert running.env == {"KAFKA_BOOTSTRAP_SERVERS": "localhost:4101"}
    assert running.container is not None


def test_neo4j_526_passes_its_credentials_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from testcontainers.community.neo4j import Neo4jContainer

    neo4j = fake_module(
        monkeypatch, "neo4j", Neo4jContainer, get_connection_url="bolt://localhost:4102"
    )
    running = containers.launch_neo4j()
    assert neo4j.call_args.args == ("neo4j:5.26-community",)
    assert neo4j.call_args.kwargs["username"] == containers.NEO4J_USER
    assert list(bound_ports(neo4j)) == [containers.NEO4J_PORT]
    assert running.env == {
        "NEO4J_URI": "bolt://localhost:4102",
        "NEO4J_USER": containers.NEO4J_USER,
        "NEO4J_PASSWORD": containers.NEO4J_PASSWORD,
    }
    settings = Settings.from_env(running.env)
    assert settings.neo4j.auth == (containers.NEO4J_USER, containers.NEO4J_PASSWORD)


def test_qdrant_runs_a_pinned_server_image(monkeypatch: pytest.MonkeyPatch) -> None:
    from testcontainers.community.qdrant import QdrantContainer

    qdrant = fake_module(
        monkeypatch,
        "qdrant",
        QdrantContainer,
        get_container_host_ip="localhost",
        get_exposed_port=4103,
    )
    running = containers.launch_qdrant()
    image = qdrant.call_args.args[0]
    assert image.startswith("qdrant/qdrant:v") and image != "qdrant/qdrant:latest"
    assert sorted(bound_ports(qdrant)) == [6333, 6334]
    assert running.env == {"QDRANT_URL": "http://localhost:4103"}
    assert Settings.from_env(running.env).qdrant.url == "http://localhost:4103"


def test_testcontainers_modules_before_the_community_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    older = ModuleType("testcontainers.kafka")
    real = importlib.import_module

    def import_module(name: str) -> ModuleType:
        if name.startswith("testcontainers.community"):
            raise ModuleNotFoundError(name="testcontainers.community")
        return older if name == "testcontainers.kafka" else real(name)

    monkeypatch.setattr(importlib, "import_module", import_module)
    assert container_module("kafka") is older


def test_a_missing_dependency_of_a_container_module_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def import_module(name: str) -> ModuleType:
        raise ModuleNotFoundError("No module named 'neo4j'", name="neo4j")

    monkeypatch.setattr(importlib, "import_module", import_module)
    with pytest.raises(ModuleNotFoundError, match="neo4j"):
        container_module("neo4j")


def test_the_package_imports_no_testcontainers_until_containers_start(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys, tests.services, tests.services.containers\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('testcontainers', 'docker')))\n"
        "assert not loaded, loaded\n"
    )
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
