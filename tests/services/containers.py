"""Kafka (KRaft), Neo4j 5.26 and a Qdrant server in Docker containers, started
with testcontainers' modules, for a contributor whose machine has a Docker
engine. A service already answering at its configured address is used as it
is, as with the local stack.

Each container's ports are bound to host ports chosen here, not left to
Docker: a stopped and started container keeps its address, so the scenarios
that stop a service and bring it back (tests/faults, test_resilience) run on
containers too. testcontainers is imported only here, and each of its modules
only when its container is about to start."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

from core.settings import Settings
from tests.services.choice import ServicesError
from tests.services.probes import (
    kafka_answers,
    neo4j_answers,
    qdrant_answers,
    wait_until,
)
from tools.stack.local import ServiceState
from tools.stack.ports import free_port

# testcontainers' Kafka module drives the Confluent image's own start scripts;
# 7.6 (Kafka 3.6) is the version the module is tested with, in KRaft mode.
KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"
KAFKA_PORT = 9093  # the module's listener for clients outside the container
NEO4J_IMAGE = "neo4j:5.26-community"
NEO4J_PORT = 7687
# The module always switches auth on; the credentials go to the suite's
# NEO4J_USER / NEO4J_PASSWORD (Neo4j 5 wants 8 characters at least).
NEO4J_USER = "neo4j"
NEO4J_PASSWORD = "docstream-tests"
QDRANT_IMAGE = "qdrant/qdrant:v1.12.4"  # the image docker-compose.yml runs
QDRANT_PORTS = (6333, 6334)  # REST, gRPC
STOP_TIMEOUT_S = 10


class Handle(Protocol):
    """A container this session started."""

    def stop(self) -> None: ...

    def start(self) -> None: ...

    def remove(self) -> None: ...


class ContainerHandle:
    """A testcontainers container: stopped and started as the same container
    (its data and its port bindings kept), removed at the end of the session."""

    def __init__(self, container: Any) -> None:
        self.container = container

    def stop(self) -> None:
        # docker stop: SIGTERM, then SIGKILL after the timeout (a container whose
        # first process ignores SIGTERM is killed, which a scenario sees as a crash).
        self.container.get_wrapped_container().stop(timeout=STOP_TIMEOUT_S)

    def start(self) -> None:
        self.container.get_wrapped_container().start()

    def remove(self) -> None:
        self.container.stop()  # testcontainers' stop removes the container


@dataclass
class Running:
    """One service of the session: the variables that point the suite at it,
    and its container when this session started one (None: it answered at the
    configured address)."""

    name: str
    env: dict[str, str]
    address: str
    answers: Callable[[], bool]
    container: Handle | None = None
    stopped: bool = False


@dataclass(frozen=True)
class Recipe:
    """How to get one service: the configured one (None when nothing is
    configured) if it answers, else a container from `launch`."""

    name: str
    configured: Running | None
    launch: Callable[[], Running]


class ContainerServices:
    backend = "containers"

    def __init__(self) -> None:
        self.running: list[Running] = []

    @property
    def env(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for service in self.running:
            merged.update(service.env)
        return merged

    def _service(self, name: str) -> Running:
        for service in self.running:
            if service.name == name:
                return service
        raise ServicesError(f"no service named {name!r}")

    def stop(self, name: str) -> bool:
        """Stop a container of this session; False when it is not ours or not running."""
        service = self._service(name)
        if service.container is None or service.stopped:
            return False
        service.container.stop()
        service.stopped = True
        return True

    def start(self, name: str, timeout_s: float = 180.0) -> None:
        """Start a stopped container again and wait until it answers."""
        service = self._service(name)
        if service.container is not None and service.stopped:
            service.container.start()
            service.stopped = False
        if not wait_until(service.answers, timeout_s):
            raise ServicesError(f"{name} not answering at {service.address} after {timeout_s:.0f}s")

    def down(self, only: list[str] | None = None) -> list[str]:
        """LocalStack's `down`: stop this session's containers, all or the named
        ones; returns the names stopped."""
        names = [s.name for s in reversed(self.running) if only is None or s.name in only]
        return [name for name in names if self.stop(name)]

    def status(self) -> list[ServiceState]:
        states = []
        for service in self.running:
            if service.container is None:
                state = "external" if service.answers() else "stopped"
            elif service.stopped:
                state = "stopped"
            else:
                state = "ready" if service.answers() else "starting"
            # No pid: a container's processes are not this machine's to signal.
            states.append(ServiceState(service.name, service.address, state, None))
        return states

    def close(self) -> None:
        """Remove every container this session started."""
        while self.running:
            service = self.running.pop()
            if service.container is not None:
                service.container.remove()


def start_containers(
    recipes: list[Recipe], log: Callable[[str], None] = print
) -> ContainerServices:
    services = ContainerServices()
    try:
        for recipe in recipes:
            configured = recipe.configured
            if configured is not None and configured.answers():
                log(f"[services] {recipe.name}: using {configured.address} (already answering)")
                services.running.append(configured)
                continue
            running = recipe.launch()
            services.running.append(running)
            log(f"[services] {recipe.name}: container at {running.address}")
    except BaseException:
        services.close()  # no container outlives a session that failed to start
        raise
    return services


def container_module(name: str) -> ModuleType:
    """testcontainers' module for one service: `testcontainers.community.<name>`
    since 4.14, `testcontainers.<name>` before."""
    try:
        return importlib.import_module(f"testcontainers.community.{name}")
    except ModuleNotFoundError as exc:
        if exc.name not in ("testcontainers.community", f"testcontainers.community.{name}"):
            raise  # a dependency of the module itself is missing: say which
    return importlib.import_module(f"testcontainers.{name}")


def launch_kafka() -> Running:
    container = container_module("kafka").KafkaContainer(KAFKA_IMAGE, port=KAFKA_PORT)
    container.with_kraft()
    container.with_bind_ports(KAFKA_PORT, free_port())
    # As the local stack's broker: three partitions, one replica of everything.
    container.with_env("KAFKA_NUM_PARTITIONS", "3")
    container.with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
    container.with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
    container.start()
    bootstrap = str(container.get_bootstrap_server())
    return Running(
        "kafka",
        {"KAFKA_BOOTSTRAP_SERVERS": bootstrap},
        bootstrap,
        lambda: kafka_answers(bootstrap),
        ContainerHandle(container),
    )


def launch_neo4j() -> Running:
    module = container_module("neo4j")
    container = module.Neo4jContainer(
        NEO4J_IMAGE, port=NEO4J_PORT, username=NEO4J_USER, password=NEO4J_PASSWORD
    )
    container.with_bind_ports(NEO4J_PORT, free_port())
    container.with_env("NEO4J_server_memory_heap_max__size", "1G")
    container.start()
    uri = str(container.get_connection_url())
    auth = (NEO4J_USER, NEO4J_PASSWORD)
    env = {"NEO4J_URI": uri, "NEO4J_USER": NEO4J_USER, "NEO4J_PASSWORD": NEO4J_PASSWORD}
    return Running("neo4j", env, uri, lambda: neo4j_answers(uri, auth), ContainerHandle(container))


def launch_qdrant() -> Running:
    container = container_module("qdrant").QdrantContainer(QDRANT_IMAGE)
    for port in QDRANT_PORTS:
        container.with_bind_ports(port, free_port())
    container.start()
    host, port = container.get_container_host_ip(), container.get_exposed_port(QDRANT_PORTS[0])
    url = f"http://{host}:{port}"
    return Running(
        "qdrant", {"QDRANT_URL": url}, url, lambda: qdrant_answers(url), ContainerHandle(container)
    )


def recipes(settings: Settings) -> list[Recipe]:
    """Kafka, Neo4j and Qdrant: the configured address first, else a container."""
    kafka = settings.kafka.bootstrap_servers
    neo4j, qdrant = settings.neo4j, settings.qdrant
    configured_qdrant = (
        Running(
            "qdrant",
            {"QDRANT_URL": qdrant.url},
            qdrant.url,
            lambda: qdrant_answers(qdrant.url, qdrant.api_key),
        )
        if qdrant.url
        else None
    )
    return [
        Recipe(
            "kafka",
            Running(
                "kafka", {"KAFKA_BOOTSTRAP_SERVERS": kafka}, kafka, lambda: kafka_answers(kafka)
            ),
            launch_kafka,
        ),
        Recipe(
            "neo4j",
            Running(
                "neo4j",
                {"NEO4J_URI": neo4j.uri},
                neo4j.uri,
                lambda: neo4j_answers(neo4j.uri, neo4j.auth),
            ),
            launch_neo4j,
        ),
        Recipe("qdrant", configured_qdrant, launch_qdrant),
    ]
