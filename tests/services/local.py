"""The local stack (tools/stack: Kafka and Neo4j as JVM processes of this
machine) as the test services. Qdrant stays embedded in the worker, as the
suite has always run it: no QDRANT_URL."""

from __future__ import annotations

from collections.abc import Callable

from core.settings import Settings
from tools.stack.local import LocalStack, ServiceState


class LocalServices:
    backend = "local"

    def __init__(self, stack: LocalStack, settings: Settings, started: list[str]) -> None:
        self.stack = stack
        self.started = started  # what this session started, and stops at its end
        self.env = {
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "NEO4J_URI": settings.neo4j.uri,
        }

    def stop(self, name: str) -> bool:
        """Stop one service of the stack's own; False when it is not ours to stop."""
        return self.stack.down(only=[name]) == [name]

    def start(self, name: str, timeout_s: float = 180.0) -> None:
        self.stack.start(name, timeout_s=timeout_s)

    def down(self, only: list[str] | None = None) -> list[str]:
        return self.stack.down(only=only)

    def status(self) -> list[ServiceState]:
        return self.stack.status()

    def close(self) -> None:
        self.stack.down(only=self.started)


def start_local(
    settings: Settings, stack_factory: Callable[[Settings], LocalStack] = LocalStack
) -> LocalServices:
    """Services already answering at the configured addresses are used as they
    are; the rest are started here (and stopped by `close`)."""
    stack = stack_factory(settings)
    started = stack.up(log=True)
    return LocalServices(stack, settings, started)
