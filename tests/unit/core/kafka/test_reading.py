"""Reading partitions up to their end (core/kafka/reading.py) without a broker:
each partition stops at the end it had when asked, or at its EOF, and an
error that is neither leaves as the project's exception."""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message

from core.kafka import reading
from core.kafka.errors import KafkaRefused
from core.kafka.records import Record
from core.settings import KafkaSettings


def message(partition: int, offset: int, error: int | None = None) -> Message:
    return Message(
        topic="t",
        partition=partition,
        offset=offset,
        key=b"k",
        value=f"{partition}:{offset}".encode(),
        headers=[("h", b"v")],
        timestamp=(1, 1_700_000_000_000),
        error=KafkaError(error) if error is not None else None,
    )


class FakeConsumer:
    """Hands out its batches one `consume` at a time, then nothing."""

    def __init__(self, *batches: list[Message]) -> None:
        self.batches = list(batches)

    def consume(self, _limit: int, timeout: float) -> list[Message]:
        return self.batches.pop(0) if self.batches else []


def test_each_partition_is_read_up_to_the_end_it_had() -> None:
    consumer = FakeConsumer(
        [message(0, 0), message(1, 4), message(0, 1)],
        [message(0, 2), message(1, 5)],  # past partition 0's end of 2: not taken
    )
    records = reading._drain(consumer, {0: 2, 1: 6}, time.monotonic() + 5)  # type: ignore[arg-type]
    assert [(r.partition, r.offset) for r in records] == [(0, 0), (1, 4), (0, 1), (1, 5)]
    assert records[0] == Record("t", 0, 0, b"k", b"0:0", (("h", b"v"),), 1_700_000_000_000)


def test_a_partitions_eof_ends_it_before_its_end_offset() -> None:
    """The end may be a record never handed out (a transaction's marker)."""
    consumer = FakeConsumer([message(0, 0), message(0, 1, KafkaError._PARTITION_EOF)])
    records = reading._drain(consumer, {0: 3}, time.monotonic() + 5)  # type: ignore[arg-type]
    assert [r.offset for r in records] == [0]


def test_a_fetch_error_is_the_projects_and_a_slow_partition_times_out() -> None:
    refused = FakeConsumer([message(0, 0, KafkaError.TOPIC_AUTHORIZATION_FAILED)])
    with pytest.raises(KafkaRefused, match="reading partition 0"):
        reading._drain(refused, {0: 1}, time.monotonic() + 5)  # type: ignore[arg-type]
    with pytest.raises(TimeoutError, match=r"partitions \[0\]"):
        reading._drain(FakeConsumer(), {0: 1}, time.monotonic() - 1)  # type: ignore[arg-type]


def test_a_topic_that_is_not_there_reads_as_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoTopics:
        def __init__(self, *_: Any) -> None:
            pass

        def bounds(self, _topics: Any) -> dict[str, Any]:
            return {}

    monkeypatch.setattr(reading, "Offsets", NoTopics)
    assert reading.read_to_end(KafkaSettings(), "absent", 1.0) == []
