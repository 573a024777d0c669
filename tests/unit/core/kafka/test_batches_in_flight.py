"""A batch in flight: the embedder's handler returns once its output is queued,
the next batch is handled meanwhile, and offsets still move only after the
output is acknowledged, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import TopicPartition
from prometheus_client import REGISTRY

from core.kafka.batches import BatchConsumer
from core.settings import KafkaSettings

TP = ("chunks", 0)


@dataclass
class Record:
    offset: int


def batch(*offsets: int) -> dict[tuple[str, int], list[Any]]:
    return {TP: [Record(o) for o in offsets]}


class FakeConsumer:
    """What BatchConsumer uses of confluent-kafka's AIOConsumer, recording
    commits and seeks."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    async def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        assert not asynchronous, "a commit is waited for: offsets move only after the write"
        self.events.append(("commit", offsets[0].offset))

    async def seek(self, tp: TopicPartition) -> None:
        self.events.append(("seek", tp.offset))

    async def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(*TP)]

    async def get_watermark_offsets(self, tp: TopicPartition, cached: bool) -> tuple[int, int]:
        return (-1001, -1001)  # librdkafka's "not known yet"

    async def pause(self, tps: list[TopicPartition]) -> None: ...

    async def resume(self, tps: list[TopicPartition]) -> None: ...

    async def consume(self, num_messages: int, timeout: float) -> list[Any]:
        return []


class Handler:
    """Returns a held acknowledgement per batch; records when each batch was handled."""

    def __init__(self, consumer: FakeConsumer, returns_ack: bool = True) -> None:
        self.consumer = consumer
        self.returns_ack = returns_ack
        self.acks: list[asyncio.Future[None]] = []

    async def __call__(self, records: Sequence[Any]) -> Awaitable[None] | None:
        self.consumer.events.append(("handled", records[0].offset))
        if not self.returns_ack:
            return None
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        return ack


def stage(handler: Handler) -> BatchConsumer:
    return BatchConsumer("unit-embedder", "chunks", "g", KafkaSettings("127.0.0.1:1"), handler)


async def test_the_next_batch_is_handled_before_the_last_one_is_acknowledged() -> None:
    consumer = FakeConsumer()
    handler = Handler(consumer)
    consumer_stage = stage(handler)
    await consumer_stage._process(consumer, batch(0, 1))  # type: ignore[arg-type]
    assert consumer.events == [("handled", 0)], "not committed before it is acknowledged"
    second = asyncio.ensure_future(consumer_stage._process(consumer, batch(2, 3)))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    assert consumer.events == [("handled", 0), ("handled", 2)]
    handler.acks[0].set_result(None)
    await second
    assert consumer.events[-1] == ("commit", 2)
    handler.acks[1].set_result(None)
    await consumer_stage._settle(consumer)  # type: ignore[arg-type]
    assert consumer.events == [("handled", 0), ("handled", 2), ("commit", 2), ("commit", 4)]


async def test_an_output_never_acknowledged_reads_both_batches_again(monkeypatch: Any) -> None:
    monkeypatch.setattr("core.kafka.batches.RETRY_PAUSE_S", 0)
    consumer = FakeConsumer()
    handler = Handler(consumer)
    consumer_stage = stage(handler)
    await consumer_stage._process(consumer, batch(0, 1))  # type: ignore[arg-type]
    second = asyncio.ensure_future(consumer_stage._process(consumer, batch(2, 3)))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    handler.acks[0].set_exception(ConnectionError("no broker"))
    await second
    commits = [e for e in consumer.events if e[0] == "commit"]
    assert commits == []
    assert consumer.events[-1] == ("seek", 0), "the earlier batch's offset wins"
    assert consumer_stage.in_flight is None


async def test_a_handler_that_waited_itself_is_committed_at_once() -> None:
    consumer = FakeConsumer()
    consumer_stage = stage(Handler(consumer, returns_ack=False))
    await consumer_stage._process(consumer, batch(0, 1))  # type: ignore[arg-type]
    assert consumer.events == [("handled", 0), ("commit", 2)]
    assert consumer_stage.in_flight is None


class Message:
    """A confluent-kafka message as far as `Record.of` reads one."""

    def __init__(self, offset: int) -> None:
        self._offset = offset

    def error(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (0, 0)

    def topic(self) -> str:
        return TP[0]

    def partition(self) -> int:
        return TP[1]

    def offset(self) -> int:
        return self._offset

    def key(self) -> None:
        return None

    def value(self) -> bytes:
        return b""

    def headers(self) -> None:
        return None


class TenRecords(FakeConsumer):
    """A partition that holds offsets 0..9 and gives them two at a time."""

    def __init__(self) -> None:
        super().__init__()
        self.next = 0

    async def get_watermark_offsets(self, tp: TopicPartition, cached: bool) -> tuple[int, int]:
        return (0, 10)

    async def consume(self, num_messages: int, timeout: float) -> list[Any]:
        first, self.next = self.next, self.next + 2
        return [Message(first), Message(first + 1)]


def lag_metric(name: str) -> float | None:
    return REGISTRY.get_sample_value(
        "docstream_consumer_lag", {"stage": name, "topic": TP[0], "partition": str(TP[1])}
    )


async def test_the_lag_metric_counts_batches_fetched_and_in_flight_until_committed() -> None:
    """docstream_consumer_lag is what the stage has not finished: a batch fetched,
    handled or waiting for its acknowledgement still counts."""
    consumer = TenRecords()
    handler = Handler(consumer)
    consumer_stage = BatchConsumer("unit-lag", "chunks", "g", KafkaSettings("127.0.0.1:1"), handler)
    first = await consumer_stage._fetch(consumer, 2, 0)  # type: ignore[arg-type]
    assert lag_metric("unit-lag") == 10, "fetched, not handled: all ten owed"
    await consumer_stage._process(consumer, first)  # type: ignore[arg-type]
    assert lag_metric("unit-lag") == 10, "handled, not acknowledged: still owed"
    second = await consumer_stage._fetch(consumer, 2, 0)  # type: ignore[arg-type]
    assert lag_metric("unit-lag") == 10
    processing = asyncio.ensure_future(consumer_stage._process(consumer, second))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    handler.acks[0].set_result(None)
    await processing
    assert lag_metric("unit-lag") == 8, "the first batch committed, the second in flight"
    handler.acks[1].set_result(None)
    await consumer_stage._settle(consumer)  # type: ignore[arg-type]
    assert lag_metric("unit-lag") == 6
