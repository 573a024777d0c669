"""Waiting, before the consumers start, for what the worker prepares: Kafka's
topics and the stores' schemas. A dependency still starting (a broker not
reachable yet, a store that is `StoreUnavailable`) is waited out with backoff;
anything else (a store that needs the operator, a bug) stops the start loudly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from core.backoff import Backoff, Dependency, wait_out
from core.kafka.errors import unavailable as kafka_unavailable
from core.metrics import SINK_UP
from core.types import StoreUnavailable

T = TypeVar("T")


def not_up_yet(exc: BaseException) -> bool:
    """A store not up yet, or a Kafka nobody answers for (what
    `core.kafka.admin.ensure_topics` raises while no broker answers)."""
    return isinstance(exc, StoreUnavailable) or kafka_unavailable(exc)


async def until_ready(
    name: str, prepare: Callable[[], Awaitable[T]], backoff: Backoff | None = None
) -> T:
    """`prepare()`, retried with backoff while what it prepares is not up yet."""
    dependency = Dependency(
        name, "sink", SINK_UP.labels(name), "dependency not up yet, retrying", "dependency up"
    )
    return await wait_out(dependency, prepare, not_up_yet, backoff)
