"""Reading a topic to its end with a consumer group of one's own: what a
rebuild (`ops/jobs/rebuild.py`) and a replay (`ops/jobs/replay.py`) share.

A `TopicCatchUp` runs a `BatchConsumer` over the topic, remembers how far its
handler got in each partition, and waits until that is the topic's end (or
given end offsets). Offsets are committed after each batch by the consumer, so
a run stopped anywhere resumes where its group left off.

`start_group_at` places a new group at an offset or a time (`core/positions.py`)
before it first reads (`docstream rebuild --from-offset/--from-time`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord
from confluent_kafka import Consumer
from confluent_kafka import TopicPartition as KafkaPartition

from core.kafka.admin import admin_client
from core.kafka.batches import BatchConsumer
from core.logs import get_logger
from core.positions import StartAt
from core.settings import KafkaSettings

log = get_logger(__name__)
Records = Sequence[ConsumerRecord[Any, Any]]
POLL_S = 0.5


@dataclass(frozen=True)
class Watermarks:
    start: int
    end: int
    committed: int | None


class TopicCatchUp:
    """One topic read through `handle` with group `group` (see the module docstring)."""

    def __init__(
        self,
        name: str,
        kafka: KafkaSettings,
        topic: str,
        group: str,
        handle: Callable[[Records], Awaitable[None]],
        batch: int,
    ) -> None:
        self.name = name
        self.kafka = kafka
        self.topic = topic
        self.group = group
        self._handle = handle
        self.batch = batch
        self._positions: dict[int, int] = {}  # partition → next offset to handle
        self._reading: asyncio.Task[None] | None = None

    def start(self) -> None:
        consumer = BatchConsumer(
            name=self.name,
            topic=self.topic,
            group_id=self.group,
            bootstrap_servers=self.kafka.bootstrap_servers,
            handle=self._handled,
            max_records=self.batch,
            within_s=0.2,
        )
        self._reading = asyncio.create_task(consumer.run())

    async def stop(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
            await asyncio.gather(self._reading, return_exceptions=True)

    async def _handled(self, records: Records) -> None:
        await self._handle(records)
        for record in records:
            done = self._positions.get(record.partition, 0)
            self._positions[record.partition] = max(done, record.offset + 1)

    async def end_offsets(self) -> dict[int, int]:
        return {p: m.end for p, m in (await asyncio.to_thread(self.watermarks)).items()}

    async def wait_until_caught_up(
        self, ends: dict[int, int] | None, on_lag: Callable[[int], None]
    ) -> None:
        """Until the handler has finished with `ends` (None: the topic's end at
        each look); the group's own offsets count as done."""
        while True:
            if self._reading is not None and self._reading.done():
                self._reading.result()  # re-raise what stopped the reader
                raise RuntimeError(f"{self.name}: the reader stopped")
            marks = await asyncio.to_thread(self.watermarks)
            current = ends if ends is not None else {p: m.end for p, m in marks.items()}
            lag = 0
            for partition, end in current.items():
                mark = marks[partition]
                done = self._positions.get(partition, mark.committed or mark.start)
                lag += max(0, end - max(done, mark.start))
            on_lag(lag)
            if lag == 0:
                return
            await asyncio.sleep(POLL_S)

    def watermarks(self) -> dict[int, Watermarks]:
        """Per partition: first and next offset, and what the group has committed."""
        with _group_consumer(self.kafka, self.group) as consumer:
            tps = _partitions(consumer, self.topic)
            committed = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10)}
            marks = {}
            for tp in tps:
                low, high = consumer.get_watermark_offsets(tp, timeout=10)
                done = committed[tp.partition]
                marks[tp.partition] = Watermarks(low, high, done if done >= 0 else None)
            return marks

    def forget(self) -> None:
        """Delete the group's committed offsets once the job is done (its reader
        stopped): the next job of the same name starts afresh, and no finished
        group is left for status to list."""
        admin = admin_client(self.kafka.bootstrap_servers)
        for group, future in admin.delete_consumer_groups([self.group]).items():
            try:
                future.result(timeout=30)
            except Exception as exc:  # left behind, harmless: say so and go on
                log.warning(
                    "consumer group not deleted", extra={"group": group, "error": repr(exc)}
                )

    def start_group_at(self, start: StartAt) -> dict[int, int]:
        """Commit `start` as the group's position, unless it has read already
        (then it resumes). Returns the group's starting offsets."""
        with _group_consumer(self.kafka, self.group) as consumer:
            tps = _partitions(consumer, self.topic)
            committed = consumer.committed(tps, timeout=10)
            if any(tp.offset >= 0 for tp in committed):
                return {tp.partition: tp.offset for tp in committed}
            wanted = _resolve(consumer, tps, start)
            consumer.commit(
                offsets=[KafkaPartition(self.topic, p, o) for p, o in wanted.items()],
                asynchronous=False,
            )
            return wanted


def _resolve(consumer: Consumer, tps: list[KafkaPartition], start: StartAt) -> dict[int, int]:
    """Offsets within each partition's range for `start`."""
    ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10) for tp in tps}
    if start.time is not None:
        stamp = int(start.time.timestamp() * 1000)
        asked = [KafkaPartition(tp.topic, tp.partition, stamp) for tp in tps]
        found = consumer.offsets_for_times(asked, timeout=10)
        # -1: no event at or after the time in that partition: start at its end.
        wanted = {tp.partition: tp.offset if tp.offset >= 0 else -1 for tp in found}
    else:
        offsets = start.offsets or {}
        unknown = set(offsets) - set(ends)
        if unknown:
            raise ValueError(f"the topic has no partition {sorted(unknown)}")
        wanted = {p: offsets.get(p, start.offset if start.offset is not None else 0) for p in ends}
    return {
        p: ends[p][1] if o < 0 else min(max(o, ends[p][0]), ends[p][1]) for p, o in wanted.items()
    }


class _group_consumer:
    """A short-lived confluent consumer in `group` that never subscribes."""

    def __init__(self, kafka: KafkaSettings, group: str) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": kafka.bootstrap_servers,
                "group.id": group,
                "enable.auto.commit": False,
            }
        )

    def __enter__(self) -> Consumer:
        return self.consumer

    def __exit__(self, *_: object) -> None:
        self.consumer.close()


def _partitions(consumer: Consumer, topic: str) -> list[KafkaPartition]:
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = sorted(metadata.topics[topic].partitions)
    if not partitions:
        raise RuntimeError(f"topic {topic} has no partitions yet")
    return [KafkaPartition(topic, p) for p in partitions]
