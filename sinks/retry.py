"""Retry with exponential backoff and jitter, and the line between a store that is
down (wait and try again: back-pressure) and data it refuses (never succeeds)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

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
    backoff = backoff or Backoff()
    attempt = 0
    while True:
        try:
            if breaker is None:
                result = await write()
            else:
                with breaker.calling():
                    result = await write()
        except Exception as exc:
            if not (is_transient(exc) or isinstance(exc, pybreaker.CircuitBreakerError)):
                raise
            SINK_UP.labels(sink).set(0)
            delay = backoff.delay(attempt)
            log.warning(
                "sink unavailable, retrying",
                extra={
                    "sink": sink,
                    "attempt": attempt + 1,
                    "retry_in_s": round(delay, 2),
                    "error": repr(exc),
                },
            )
            attempt += 1
            await asyncio.sleep(delay)
            continue
        SINK_UP.labels(sink).set(1)
        return result
