"""Retry with exponential backoff and jitter, and the line between a store that is
down (wait and try again: back-pressure) and data it refuses (never succeeds)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pybreaker
from neo4j.exceptions import DriverError, ServiceUnavailable, SessionExpired, TransientError

from core.logs import get_logger
from core.metrics import SINK_UP

log = get_logger(__name__)
T = TypeVar("T")

# Errors that say "the store is not there right now", not "this data is wrong".
TRANSIENT: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    OSError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
    DriverError,
    httpx.TransportError,
)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TRANSIENT):
        return True
    # qdrant-client wraps transport failures in its own exception type.
    return type(exc).__name__ in {"ResponseHandlingException", "UnexpectedResponse"} and (
        "503" in str(exc) or "Connection" in str(exc)
    )


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 0.2
    maximum_s: float = 10.0
    factor: float = 2.0

    def delay(self, attempt: int) -> float:
        """Full jitter: a random wait up to the exponential bound."""
        bound = min(self.maximum_s, self.initial_s * self.factor**attempt)
        return random.uniform(bound / 2, bound)


@dataclass(frozen=True)
class Dependency:
    """Something a stage waits out while it is down: who waits (the value of the
    log field `field`), its 0/1 gauge, and the lines logged while it is down
    and once it is back."""

    name: str
    field: str
    up: Any
    down_message: str
    back_message: str


async def wait_out(
    dependency: Dependency,
    attempt: Callable[[], Awaitable[T]],
    is_down: Callable[[BaseException], bool],
    backoff: Backoff | None = None,
) -> T:
    """`attempt()` until it succeeds; failures `is_down` calls an outage are
    waited out with backoff, anything else is raised."""
    backoff = backoff or Backoff()
    tries = 0
    while True:
        try:
            result = await attempt()
        except Exception as exc:
            if not is_down(exc):
                raise
            dependency.up.set(0)
            delay = backoff.delay(tries)
            log.warning(
                dependency.down_message,
                extra={
                    dependency.field: dependency.name,
                    "attempt": tries + 1,
                    "retry_in_s": round(delay, 2),
                    "error": repr(exc),
                },
            )
            tries += 1
            await asyncio.sleep(delay)
            continue
        dependency.up.set(1)
        if tries:
            log.info(
                dependency.back_message,
                extra={dependency.field: dependency.name, "attempts": tries},
            )
        return result


async def until_written(
    sink: str,
    write: Callable[[], Awaitable[T]],
    backoff: Backoff | None = None,
    breaker: pybreaker.CircuitBreaker | None = None,
) -> T:
    """Run `write` until it succeeds, waiting out transient failures.

    The caller's stream does not move on meanwhile, so a store that is down holds
    its consumer (back-pressure) instead of losing or dead-lettering events.
    Behind an open breaker the write is not even tried until its timeout passes.
    Non-transient errors are raised for the caller to isolate the bad event.
    """

    async def attempt() -> T:
        if breaker is None:
            return await write()
        with breaker.calling():
            return await write()

    def is_down(exc: BaseException) -> bool:
        return is_transient(exc) or isinstance(exc, pybreaker.CircuitBreakerError)

    store = Dependency(
        sink, "sink", SINK_UP.labels(sink), "sink unavailable, retrying", "sink back"
    )
    return await wait_out(store, attempt, is_down, backoff)
