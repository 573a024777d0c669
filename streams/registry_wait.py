"""Waiting out a schema registry that is down.

With the Confluent wire format, decoding an unseen schema id and encoding with a
schema not yet registered both ask the registry. When it does not answer, the
event is not at fault: the stage holds its stream and asks again (as it does for
a sink that is down) instead of dead-lettering good events."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from core.backoff import Backoff, Dependency, wait_out
from core.metrics import REGISTRY_UP
from schemas.confluent import RegistryUnavailable

T = TypeVar("T")


async def with_registry(stage: str, call: Callable[[], T], backoff: Backoff | None = None) -> T:
    """`call()`, retried with backoff for as long as the registry is unavailable."""

    async def attempt() -> T:
        return call()

    registry = Dependency(
        stage,
        "stage",
        REGISTRY_UP.labels(stage),
        "schema registry unavailable, retrying",
        "schema registry back",
    )
    return await wait_out(
        registry, attempt, lambda exc: isinstance(exc, RegistryUnavailable), backoff
    )
