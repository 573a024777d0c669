"""Waiting, before the consumers start, for what the worker prepares: Kafka's
topics and the stores' schemas. A dependency still starting (a broker not
reachable yet, a store that is `StoreUnavailable`) is waited out with backoff;
anything else (a store that needs the operator, a bug) stops the start loudly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from confluent_kafka import KafkaError, KafkaException

from core.backoff import Backoff, Dependency, wait_out
from core.metrics import SINK_UP
from core.types import StoreUnavailable

T = TypeVar("T")

# What `core.kafka.admin.ensure_topics` raises while no broker answers: its
# metadata request fails (transport, name resolution, every broker down) or
# times out.
KAFKA_UNREACHABLE = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
        KafkaError.BROKER_NOT_AVAILABLE,
        KafkaError.REQUEST_TIMED_OUT,
    }
)


def kafka_unreachable(exc: BaseException) -> bool:
    if not isinstance(exc, KafkaException) or not exc.args:
        return False
    error = exc.args[0]
    if not isinstance(error, KafkaError):
        return False
    return error.code() in KAFKA_UNREACHABLE or error.retriable()


def not_up_yet(exc: BaseException) -> bool:
    return isinstance(exc, StoreUnavailable) or kafka_unreachable(exc)


async def until_ready(
    name: str, prepare: Callable[[], Awaitable[T]], backoff: Backoff | None = None
) -> T:
    """`prepare()`, retried with backoff while what it prepares is not up yet."""
    dependency = Dependency(
        name, "sink", SINK_UP.labels(name), "dependency not up yet, retrying", "dependency up"
    )
    return await wait_out(dependency, prepare, not_up_yet, backoff)
