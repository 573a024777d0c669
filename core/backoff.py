"""Waiting out a dependency that is down: exponential backoff with jitter, and
the loop that retries an attempt for as long as its failure means "not there
right now" (a store, the schema registry, Kafka at startup). What counts as
down is the caller's decision, passed in: this module knows no library."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from core.logs import get_logger

log = get_logger(__name__)
T = TypeVar("T")


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
    on_down: Callable[[BaseException, int, float], None] | None = None,
    on_back: Callable[[], None] | None = None,
) -> T:
    """`attempt()` until it succeeds; failures `is_down` calls an outage are
    waited out with backoff, anything else is raised. `on_down(exc, attempt,
    delay)` replaces the generic down line when a caller has more to say;
    `on_back()` runs once the attempt succeeds after an outage."""
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
            if on_down is not None:
                on_down(exc, tries + 1, delay)
            else:
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
            if on_back is not None:
                on_back()
            log.info(
                dependency.back_message,
                extra={dependency.field: dependency.name, "attempts": tries},
            )
        return result
