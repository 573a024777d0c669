"""A batch in flight: the embedder's handler returns once its output is queued,
the next batch is handled meanwhile, and offsets still move only after the
output is acknowledged, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import TopicPartition

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
