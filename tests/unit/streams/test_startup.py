"""The startup waiter (streams/startup.py): waits for a store that is not up
yet and for a Kafka nobody answers for; stops the start on anything else."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from core.backoff import Backoff
from core.kafka.errors import KafkaUnavailable
from core.types import StoreNeedsOperator, StoreUnavailable
from streams.startup import until_ready

FAST = Backoff(initial_s=0.001, maximum_s=0.002)


def kafka(code: int) -> KafkaException:
    return KafkaException(KafkaError(code))


class Preparing:
    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ready"


async def test_a_store_and_a_broker_not_up_yet_are_waited_for() -> None:
    prepare = Preparing(
        StoreUnavailable("neo4j", "starting"),
        kafka(KafkaError._TRANSPORT),
        kafka(KafkaError._TIMED_OUT),
        KafkaUnavailable("no broker answered"),
    )
    assert await until_ready("startup-test", prepare, FAST) == "ready"
    assert prepare.calls == 5


@pytest.mark.parametrize(
    "error",
    [
        StoreNeedsOperator("qdrant", "older layout", "old_layout"),
        kafka(KafkaError.TOPIC_AUTHORIZATION_FAILED),
        TypeError("a bug"),
    ],
)
async def test_anything_else_stops_the_start_at_once(error: Exception) -> None:
    prepare = Preparing(error)
    with pytest.raises(type(error)):
        await until_ready("startup-test", prepare, FAST)
    assert prepare.calls == 1
