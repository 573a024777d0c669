"""Waiting out a schema registry that is down.

With the Confluent wire format, decoding an unseen schema id and encoding with a
schema not yet registered both ask the registry. When it does not answer, the
event is not at fault: the stage holds its stream and asks again (as it does for
a sink that is down) instead of dead-lettering good events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from core.logs import get_logger
from core.metrics import REGISTRY_UP
from schemas.confluent import RegistryUnavailable
from sinks.retry import Backoff

log = get_logger(__name__)
T = TypeVar("T")


async def with_registry(stage: str, call: Callable[[], T], backoff: Backoff | None = None) -> T:
    """`call()`, retried with backoff for as long as the registry is unavailable."""
    backoff = backoff or Backoff()
    attempt = 0
    while True:
        try:
            result = call()
        except RegistryUnavailable as exc:
            REGISTRY_UP.labels(stage).set(0)
            delay = backoff.delay(attempt)
            log.warning(
                "schema registry unavailable, retrying",
                extra={
                    "stage": stage,
                    "attempt": attempt + 1,
                    "retry_in_s": round(delay, 2),
                    "error": str(exc),
                },
            )
            attempt += 1
            await asyncio.sleep(delay)
            continue
        REGISTRY_UP.labels(stage).set(1)
        if attempt:
            log.info("schema registry back", extra={"stage": stage, "attempts": attempt})
        return result
