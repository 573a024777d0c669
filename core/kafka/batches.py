"""A stage that reads its topic in batches with a consumer group of its own and
commits offsets only after its handler has finished with the batch.

Used by the embedder and by each sink, so a slow or unavailable store holds
back only its own sink: while a handler works (or waits for its store), the
consumer is paused but keeps polling, which keeps it in its group without
fetching more. A crash or a stop mid-batch commits nothing, and the batch is
read again: at-least-once, and every write downstream is idempotent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.aio import AIOConsumer

from core.kafka.config import consumer_config
from core.kafka.records import Record
from core.logs import get_logger
from core.metrics import (
    ASSIGNED_PARTITIONS,
    CONSUMER_LAG,
    CONSUMER_PAUSED,
    CONSUMER_PAUSED_SINCE,
)
from core.settings import KafkaSettings

log = get_logger(__name__)
# A handler returns once it has done its work; it may return an awaitable that
# completes when what it produced is acknowledged (see `BatchConsumer`).
Handler = Callable[[Sequence[Record]], Awaitable["Awaitable[None] | None"]]
Partition = tuple[str, int]  # (topic, partition)
Fetched = dict[Partition, list[Record]]
KEEPALIVE_S = 1.0
SESSION_TIMEOUT_MS = 60_000
# How long a stage waits before it reads again a batch that failed.
RETRY_PAUSE_S = 5.0
# librdkafka runs each call of the consumer on a thread of its own pool: the
# fetch and, while a handler works, the keep-alive and a commit at most.
CONSUMER_THREADS = 2


@dataclass
class InFlight:
    """A handled batch whose output Kafka has not acknowledged yet."""

    fetched: Fetched
    acknowledged: Awaitable[None]


@dataclass
class BatchConsumer:
    """Reads batches and commits each once its handler is done with it.

    A handler that returns an awaitable (the embedder: its output queued, not
    yet acknowledged) keeps that batch in flight while the next one is fetched
    and handled: the model starts on the next batch instead of waiting for the
    broker. The batch in flight is committed once that awaitable completes and
    before the next batch's offsets, so offsets still move only after the
    write, in order; if it fails, both batches are read again.

    The consumer is confluent-kafka's (`AIOConsumer`: librdkafka, each call on
    a thread of its own pool), configured by `core/kafka/config.py` like every
    other client of the project; librdkafka heartbeats on its own thread."""

    name: str
    topic: str
    group_id: str
    kafka: KafkaSettings
    handle: Handler
    max_records: int = 64
    within_s: float = 0.05
    in_flight: InFlight | None = field(default=None, init=False)
    # Per partition, the first offset not committed yet: what the lag metric
    # counts from, so a batch fetched (or in flight) is still owed.
    uncommitted_from: dict[Partition, int] = field(default_factory=dict, init=False)

    def _config(self) -> dict[str, Any]:
        return consumer_config(
            self.kafka,
            self.group_id,
            **{
                "client.id": f"docstream-{self.name}",
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                # Heartbeats run on librdkafka's thread, but the group still
                # wants a poll within max.poll.interval.ms: the keep-alive below
                # polls every second while a handler works.
                "session.timeout.ms": SESSION_TIMEOUT_MS,
                "heartbeat.interval.ms": 3000,
                "error_cb": self._on_error,
            },
        )

    async def _on_error(self, error: KafkaError) -> None:
        # librdkafka retries on its own; the stage's status shows it waiting.
        log.warning(
            "kafka client error",
            extra={"stage": self.name, "error": error.str(), "code": error.name()},
        )

    async def run(self) -> None:
        consumer = AIOConsumer(self._config(), max_workers=CONSUMER_THREADS)
        assignments = AssignmentLog(self.name, self.uncommitted_from)
        await consumer.subscribe(
            [self.topic], on_assign=assignments.on_assign, on_revoke=assignments.on_revoke
        )
        # Seen by `docstream status` as running from the start, not only once paused.
        CONSUMER_PAUSED.labels(self.name).set(0)
        CONSUMER_PAUSED_SINCE.labels(self.name).set(0)
        log.info(
            "consumer started",
            extra={"stage": self.name, "topic": self.topic, "group": self.group_id},
        )
        try:
            while True:
                fetched = await self._fetch(consumer, self.max_records, self.within_s)
                if fetched:
                    await self._process(consumer, fetched)
                elif self.in_flight is not None:
                    await self._settle(consumer)  # nothing new: finish the last batch now
        finally:
            await consumer.close()

    async def _fetch(self, consumer: AIOConsumer, limit: int, within_s: float) -> Fetched:
        """Up to `limit` records, waiting at most `within_s` for the first, by
        partition in offset order. A message that carries an error (a topic
        not there yet, a broker that went away) is logged and skipped:
        librdkafka goes on by itself."""
        fetched: Fetched = {}
        for message in await consumer.consume(num_messages=limit, timeout=within_s):
            error = message.error()
            if error is not None:
                log.warning(
                    "fetch error",
                    extra={"stage": self.name, "error": error.str(), "code": error.name()},
                )
                continue
            record = Record.of(message)
            fetched.setdefault((record.topic, record.partition), []).append(record)
        for tp, batch in fetched.items():
            # A fetch starts where the group committed, or where a rewind put it.
            self.uncommitted_from.setdefault(tp, batch[0].offset)
        await self._record_lag(consumer, {tp: self.uncommitted_from[tp] for tp in fetched})
        return fetched

    async def _process(self, consumer: AIOConsumer, fetched: Fetched) -> None:
        records = [record for batch in fetched.values() for record in batch]
        work = asyncio.ensure_future(self.handle(records))
        await self._keep_alive_until(consumer, work)
        if work.exception() is not None:
            # A bug, not a store outage (those are waited out inside the handler):
            # read the batch again later rather than skip it.
            log.error(
                "batch failed; it will be read again",
                extra={"stage": self.name},
                exc_info=work.exception(),
            )
            await self._rewind(consumer, fetched)
            await self._rewind_in_flight(consumer)
            await asyncio.sleep(RETRY_PAUSE_S)
            return
        # The batch before this one had this one's whole handling to be acknowledged.
        if not await self._settle(consumer, also=fetched):
            return
        acknowledged = work.result()
        if acknowledged is None:
            await self._commit(consumer, fetched)
        else:
            self.in_flight = InFlight(fetched, acknowledged)

    async def _settle(self, consumer: AIOConsumer, also: Fetched | None = None) -> bool:
        """Wait for the batch in flight to be acknowledged, then commit it. If it
        is not, read it again, and `also` (a batch handled after it) with it."""
        in_flight, self.in_flight = self.in_flight, None
        if in_flight is None:
            return True
        waiting = asyncio.ensure_future(in_flight.acknowledged)
        await self._keep_alive_until(consumer, waiting)
        if waiting.exception() is not None:
            log.error(
                "a batch's output was not acknowledged; it will be read again",
                extra={"stage": self.name},
                exc_info=waiting.exception(),
            )
            await self._rewind(consumer, also or {})
            await self._rewind(consumer, in_flight.fetched)  # last: its offsets are the earlier
            await asyncio.sleep(RETRY_PAUSE_S)
            return False
        await self._commit(consumer, in_flight.fetched)
        return True

    async def _rewind_in_flight(self, consumer: AIOConsumer) -> None:
        in_flight, self.in_flight = self.in_flight, None
        if in_flight is not None:
            await self._rewind(consumer, in_flight.fetched)

    async def _commit(self, consumer: AIOConsumer, fetched: Fetched) -> None:
        offsets = {tp: batch[-1].offset + 1 for tp, batch in fetched.items()}
        self.uncommitted_from.update(offsets)
        await self._record_lag(consumer, offsets)
        try:
            await consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                asynchronous=False,
            )
        except KafkaException as exc:
            # Partitions moved to another member mid-batch: it reads them again,
            # and the writes are idempotent.
            log.warning("offsets not committed", extra={"stage": self.name, "error": repr(exc)})

    async def _keep_alive_until(self, consumer: AIOConsumer, work: asyncio.Future[Any]) -> None:
        """While the handler works, poll a paused consumer: the group sees it alive
        (no rebalance during a long store outage) and nothing new is fetched."""
        done, _ = await asyncio.wait({work}, timeout=KEEPALIVE_S)
        if done:
            return
        paused = await _assigned(consumer)
        await consumer.pause(_partitions(paused))
        CONSUMER_PAUSED.labels(self.name).set(1)
        # When, so `docstream status` can say for how long (why is the sink's metrics).
        CONSUMER_PAUSED_SINCE.labels(self.name).set(time.time())
        try:
            while not work.done():
                # A poll on paused partitions returns at once: wait between polls.
                await asyncio.wait({work}, timeout=KEEPALIVE_S)
                stray = await self._fetch(consumer, self.max_records, 0)
                # Partitions assigned during the pause are not paused: put their
                # records back to be read after this batch.
                await self._rewind(consumer, stray)
                if stray:
                    await consumer.pause(_partitions(stray))
                    paused |= set(stray)
        finally:
            held = await _assigned(consumer)
            await consumer.resume(_partitions(tp for tp in paused if tp in held))
            CONSUMER_PAUSED.labels(self.name).set(0)
            CONSUMER_PAUSED_SINCE.labels(self.name).set(0)

    async def _record_lag(self, consumer: AIOConsumer, offsets: dict[Partition, int]) -> None:
        """Records from each partition's first uncommitted offset to its end:
        what the stage has not finished (written, or acknowledged downstream)."""
        for (topic, partition), next_offset in offsets.items():
            # The broker's end as of the last fetch: no request of its own.
            _low, end = await consumer.get_watermark_offsets(
                TopicPartition(topic, partition), cached=True
            )
            if end is not None and end >= 0:
                CONSUMER_LAG.labels(self.name, topic, str(partition)).set(max(0, end - next_offset))

    async def _rewind(self, consumer: AIOConsumer, fetched: Fetched) -> None:
        """Read `fetched` again from its first offsets. A partition no longer
        assigned is left to its new owner, which starts at the committed
        offset. A seek librdkafka refuses is a bug in this class, not a
        condition to work around: skipping the batch would lose it."""
        held = await _assigned(consumer)
        for tp, batch in fetched.items():
            if batch and tp in held:
                await consumer.seek(TopicPartition(tp[0], tp[1], batch[0].offset))


async def _assigned(consumer: AIOConsumer) -> set[Partition]:
    return {(tp.topic, tp.partition) for tp in await consumer.assignment()}


def _partitions(partitions: Iterable[Partition]) -> list[TopicPartition]:
    return [TopicPartition(topic, partition) for topic, partition in partitions]


class AssignmentLog:
    """Which partitions this worker holds for a stage: in the log at every
    rebalance and as a gauge, so a scaled-out group shows how it split. (The
    client assigns what it was given once a callback returns.)"""

    def __init__(self, stage: str, uncommitted_from: dict[Partition, int] | None = None) -> None:
        self.stage = stage
        # A partition that leaves may come back moved on by another member.
        self.uncommitted_from = {} if uncommitted_from is None else uncommitted_from

    async def on_revoke(self, _consumer: Any, revoked: list[TopicPartition]) -> None:
        for tp in revoked:
            self.uncommitted_from.pop((tp.topic, tp.partition), None)
        if revoked:
            log.info("partitions revoked", extra={"stage": self.stage, **_described(revoked)})

    async def on_assign(self, _consumer: Any, assigned: list[TopicPartition]) -> None:
        ASSIGNED_PARTITIONS.labels(self.stage).set(len(assigned))
        log.info("partitions assigned", extra={"stage": self.stage, **_described(assigned)})


def _described(partitions: list[TopicPartition]) -> dict[str, object]:
    return {
        "topic": partitions[0].topic if partitions else "",
        "partitions": sorted(tp.partition for tp in partitions),
    }
