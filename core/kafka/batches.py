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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from core.logs import get_logger
from core.metrics import (
    ASSIGNED_PARTITIONS,
    CONSUMER_LAG,
    CONSUMER_PAUSED,
    CONSUMER_PAUSED_SINCE,
)

log = get_logger(__name__)
# A handler returns once it has done its work; it may return an awaitable that
# completes when what it produced is acknowledged (see `BatchConsumer`).
Handler = Callable[[Sequence[ConsumerRecord[bytes, bytes]]], Awaitable["Awaitable[None] | None"]]
Fetched = dict[TopicPartition, list[Any]]
KEEPALIVE_S = 1.0
SESSION_TIMEOUT_MS = 60_000
# How long a stage waits before it reads again a batch that failed.
RETRY_PAUSE_S = 5.0


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
    write, in order; if it fails, both batches are read again."""

    name: str
    topic: str
    group_id: str
    bootstrap_servers: str
    handle: Handler
    max_records: int = 64
    within_s: float = 0.05
    in_flight: InFlight | None = field(default=None, init=False)

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers.split(","),
            group_id=self.group_id,
            client_id=f"docstream-{self.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            # Heartbeats run on the event loop: a long pause in it (an embedded
            # index build holds the GIL for tens of seconds) must not cost this
            # stage its partitions. Faust's own consumer allows as long.
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=3000,
        )

    async def run(self) -> None:
        consumer = self._consumer()
        consumer.subscribe([self.topic], listener=AssignmentLog(self.name))
        await consumer.start()
        # Seen by `docstream status` as running from the start, not only once paused.
        CONSUMER_PAUSED.labels(self.name).set(0)
        CONSUMER_PAUSED_SINCE.labels(self.name).set(0)
        log.info(
            "consumer started",
            extra={"stage": self.name, "topic": self.topic, "group": self.group_id},
        )
        try:
            while True:
                fetched = await consumer.getmany(
                    timeout_ms=int(self.within_s * 1000), max_records=self.max_records
                )
                if fetched:
                    await self._process(consumer, fetched)
                elif self.in_flight is not None:
                    await self._settle(consumer)  # nothing new: finish the last batch now
        finally:
            await consumer.stop()

    async def _process(self, consumer: AIOKafkaConsumer, fetched: Fetched) -> None:
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
            self._rewind(consumer, fetched)
            self._rewind_in_flight(consumer)
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

    async def _settle(self, consumer: AIOKafkaConsumer, also: Fetched | None = None) -> bool:
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
            self._rewind(consumer, also or {})
            self._rewind(consumer, in_flight.fetched)  # last: its offsets are the earlier
            await asyncio.sleep(RETRY_PAUSE_S)
            return False
        await self._commit(consumer, in_flight.fetched)
        return True

    def _rewind_in_flight(self, consumer: AIOKafkaConsumer) -> None:
        in_flight, self.in_flight = self.in_flight, None
        if in_flight is not None:
            self._rewind(consumer, in_flight.fetched)

    async def _commit(self, consumer: AIOKafkaConsumer, fetched: Fetched) -> None:
        offsets = {tp: batch[-1].offset + 1 for tp, batch in fetched.items()}
        self._record_lag(consumer, offsets)
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # Partitions moved to another member mid-batch: it reads them again,
            # and the writes are idempotent.
            log.warning("offsets not committed", extra={"stage": self.name, "error": repr(exc)})

    async def _keep_alive_until(
        self, consumer: AIOKafkaConsumer, work: asyncio.Future[Any]
    ) -> None:
        """While the handler works, poll a paused consumer: the group sees it alive
        (no rebalance during a long store outage) and nothing new is fetched."""
        done, _ = await asyncio.wait({work}, timeout=KEEPALIVE_S)
        if done:
            return
        paused = set(consumer.assignment())
        consumer.pause(*paused)
        CONSUMER_PAUSED.labels(self.name).set(1)
        # When, so `docstream status` can say for how long (why is the sink's metrics).
        CONSUMER_PAUSED_SINCE.labels(self.name).set(time.time())
        try:
            while not work.done():
                # A poll on paused partitions returns at once: wait between polls.
                await asyncio.wait({work}, timeout=KEEPALIVE_S)
                stray = await consumer.getmany(timeout_ms=0)
                # Partitions assigned during the pause are not paused: put their
                # records back to be read after this batch.
                self._rewind(consumer, stray)
                consumer.pause(*stray)
                paused |= set(stray)
        finally:
            consumer.resume(*(tp for tp in paused if tp in consumer.assignment()))
            CONSUMER_PAUSED.labels(self.name).set(0)
            CONSUMER_PAUSED_SINCE.labels(self.name).set(0)

    def _record_lag(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        for tp, next_offset in offsets.items():
            end = consumer.highwater(tp)
            if end is not None:
                CONSUMER_LAG.labels(self.name, tp.topic, str(tp.partition)).set(
                    max(0, end - next_offset)
                )

    @staticmethod
    def _rewind(consumer: AIOKafkaConsumer, fetched: Fetched) -> None:
        for tp, batch in fetched.items():
            if batch and tp in consumer.assignment():
                consumer.seek(tp, batch[0].offset)


class AssignmentLog(ConsumerRebalanceListener):
    """Which partitions this worker holds for a stage: in the log at every
    rebalance and as a gauge, so a scaled-out group shows how it split."""

    def __init__(self, stage: str) -> None:
        self.stage = stage

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if revoked:
            log.info("partitions revoked", extra={"stage": self.stage, **_described(revoked)})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        ASSIGNED_PARTITIONS.labels(self.stage).set(len(assigned))
        log.info("partitions assigned", extra={"stage": self.stage, **_described(assigned)})


def _described(partitions: set[TopicPartition]) -> dict[str, object]:
    return {
        "topic": next(iter(partitions)).topic if partitions else "",
        "partitions": sorted(tp.partition for tp in partitions),
    }
