"""The bulk producer (core/kafka/bulk.py) without a broker: a full local queue
is waited on, and each event's outcome reaches its sender as a `Delivery`."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Message

from core.kafka import bulk
from core.kafka.bulk import BulkProducer, Delivery
from core.kafka.config import BULK_LINGER_MS
from core.kafka.errors import KafkaRefused
from core.settings import KafkaSettings


class FakeProducer:
    """Full for the first `full_for` produce calls; acknowledges on poll."""

    def __init__(self, config: dict[str, Any], full_for: int = 0) -> None:
        self.config = config
        self.full_for = full_for
        self.polls: list[float] = []
        self.queued: list[tuple[str, dict[str, Any]]] = []
        self.refuse: KafkaException | None = None

    def produce(self, topic: str, **kwargs: Any) -> None:
        if self.refuse is not None:
            raise self.refuse
        if self.full_for:
            self.full_for -= 1
            raise BufferError("queue full")
        self.queued.append((topic, kwargs))

    def poll(self, timeout: float) -> int:
        self.polls.append(timeout)
        return 0

    def flush(self, timeout: float) -> int:
        return 0


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[FakeProducer]:
    producers: list[FakeProducer] = []

    def make(config: dict[str, Any]) -> FakeProducer:
        producers.append(FakeProducer(config, full_for=2))
        return producers[-1]

    monkeypatch.setattr(bulk, "Producer", make)
    return producers


def test_a_full_queue_is_waited_on_and_the_event_queued_once(made: list[FakeProducer]) -> None:
    producer = BulkProducer(KafkaSettings(max_message_bytes=3_000), delivery_timeout_s=7.0)
    [fake] = made
    assert fake.config["linger.ms"] == BULK_LINGER_MS
    assert fake.config["message.max.bytes"] == 3_000
    assert fake.config["message.timeout.ms"] == 7_000
    producer.send("t", b"v", key=b"k", headers=[("h", b"1")], partition=2)
    assert fake.polls == [bulk.QUEUE_FULL_WAIT_S, bulk.QUEUE_FULL_WAIT_S, 0]
    assert fake.queued == [
        ("t", {"key": b"k", "value": b"v", "headers": [("h", b"1")], "partition": 2})
    ]


def test_an_event_librdkafka_refuses_is_the_projects_refusal(made: list[FakeProducer]) -> None:
    producer = BulkProducer(KafkaSettings(), delivery_timeout_s=1.0)
    made[0].refuse = KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    with pytest.raises(KafkaRefused, match="queueing an event for t"):
        producer.send("t", b"v")


def test_the_outcome_reaches_the_sender_as_a_delivery() -> None:
    seen: list[Delivery] = []
    report = bulk._reporter(seen.append)
    written = Message(topic="t", partition=1, offset=9)
    report(None, written)
    report(KafkaError(KafkaError._MSG_TIMED_OUT, "timed out"), written)
    assert seen[0] == Delivery("t", 1, 9) and seen[0].address == "t:1:9"
    assert seen[1].error == "timed out"
