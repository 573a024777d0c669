"""The services the integration and fault suites run against: Kafka, Neo4j
and (on containers) a Qdrant server.

`start_services()` picks the backend (tests/services/choice.py:
DOCSTREAM_TEST_SERVICES = auto | containers | local), starts what does not
answer yet, and returns an object that names the services' addresses in the
same variables the worker reads (`env`), stops and starts one service for the
fault scenarios, and stops what it started (`close`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from core.settings import Settings
from tests.services.choice import VARIABLE, ServicesError, choose_backend
from tests.services.local import start_local
from tools.stack.local import ServiceState

__all__ = ["VARIABLE", "Services", "ServicesError", "start_services"]


class Services(Protocol):
    backend: str  # "containers" | "local"

    @property
    def env(self) -> Mapping[str, str]:
        """KAFKA_BOOTSTRAP_SERVERS, NEO4J_URI (with NEO4J_USER and NEO4J_PASSWORD
        when the session's Neo4j wants them) and QDRANT_URL when a Qdrant server runs."""
        ...

    def stop(self, name: str) -> bool: ...

    def start(self, name: str, timeout_s: float = 180.0) -> None: ...

    def down(self, only: list[str] | None = None) -> list[str]: ...

    def status(self) -> list[ServiceState]: ...

    def close(self) -> None: ...


def start_services(env: Mapping[str, str], log: Callable[[str], None] = print) -> Services:
    backend = choose_backend(env)
    settings = Settings.from_env(env)
    log(f"[services] {VARIABLE}={env.get(VARIABLE) or 'auto'}: {backend}")
    if backend == "containers":
        # Imported here: without Docker, testcontainers is never imported at all.
        from tests.services.containers import recipes, start_containers

        return start_containers(recipes(settings), log)
    return start_local(settings)
