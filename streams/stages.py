"""The three kinds of stage, written against small seams (codec, chunker, embedder,
stores, producer) so they can be read and tested without Faust.

Each handler takes consumed messages and returns only when everything it owes
downstream is acknowledged; an event that can never succeed is dead-lettered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from functools import partial

import pybreaker

from core.correlation import CORRELATION_HEADER
from core.logs import get_logger
from core.metrics import BATCH_SIZE, EVENTS, FRESHNESS_SECONDS, STAGE_SECONDS
from core.notices import notice_of
from core.settings import Topics
from core.tracing import BatchSpans, batch_spans
from core.types import (
    CurrentProfile,
    GraphStore,
    Producer,
    SinkEvent,
    StoreRejected,
    VectorStore,
)
from schemas.codec import Codecs
from schemas.events import ChunkEvent, EmbeddedChunk
from sinks.plan import plan_writes
from sinks.retry import until_written
from streams.chunk_stage import ChunkStage
from streams.deadletter import DeadLetters, DeadLetterSink, RawMessage
from streams.records import embedded, sink_event
from streams.registry_wait import with_registry
from streams.stage_io import DATA_ERRORS, check_indexable, derived_headers, headers_of

# The chunk stage lives in streams/chunk_stage.py; its readers find it here too.
__all__ = ["DATA_ERRORS", "ChunkStage", "EmbedStage", "SinkStage", "check_indexable"]

log = get_logger(__name__)


@dataclass
class EmbedStage:
    """chunks → chunks.embedded: embed a batch at once, off the event loop."""

    profile: CurrentProfile  # the embedder
    codecs: Codecs
    producer: Producer
    dead_letters: DeadLetters
    topics: Topics
    name: str = "embedder"

    async def handle(self, messages: Sequence[RawMessage]) -> Awaitable[None] | None:
        """Embed the batch and queue its output; return what completes once Kafka
        has acknowledged it (the consumer commits then, while the model is
        already on the next batch), or None when nothing was queued."""
        with batch_spans("docstream.embed", self.name, messages) as spans:
            return await self._handle(messages, spans)

    async def _handle(
        self, messages: Sequence[RawMessage], spans: BatchSpans
    ) -> Awaitable[None] | None:
        started = time.perf_counter()
        BATCH_SIZE.labels(self.name).observe(len(messages))
        decoded: list[tuple[RawMessage, ChunkEvent]] = []
        acknowledged: Awaitable[None] | None = None
        for message in messages:
            try:
                record = await with_registry(
                    self.name, partial(self.codecs.chunks.decode, message.value)
                )
                decoded.append((message, ChunkEvent.from_record(record)))
            except DATA_ERRORS as exc:
                await self.dead_letters.send(self.name, message, exc)
        if decoded:
            upserts = [i for i, (_, chunk) in enumerate(decoded) if chunk.op == "UPSERT"]
            # One embedder for the batch: a replay switching models meanwhile
            # must not label these vectors with the new model's name.
            embedder = self.profile.embedder
            # The model runs in a thread: the loop keeps heartbeats and queries going.
            made = await asyncio.to_thread(embedder.embed, [decoded[i][1].text for i in upserts])
            vectors: list[Sequence[float]] = [[] for _ in decoded]  # a DELETE has no vector
            for i, vector in zip(upserts, made, strict=True):
                vectors[i] = vector
            out = await with_registry(
                self.name, lambda: self._encoded(decoded, vectors, spans, embedder.model_name)
            )
            acknowledged = await self.producer.send_soon(self.topics.chunks_embedded, out)
            EVENTS.labels(self.name, "ok").inc(len(decoded))
        STAGE_SECONDS.labels(self.name).observe(time.perf_counter() - started)
        return acknowledged

    def _encoded(
        self,
        decoded: list[tuple[RawMessage, ChunkEvent]],
        vectors: list[Sequence[float]],
        spans: BatchSpans,
        model: str,
    ) -> list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]:
        return [
            (
                message.key,
                self.codecs.embedded.encode(embedded(chunk, vector, model).to_record()),
                derived_headers(
                    spans.continued(headers_of(message)), self.codecs.embedded.fingerprint_hex
                ),
            )
            for (message, chunk), vector in zip(decoded, vectors, strict=True)
        ]


Store = VectorStore | GraphStore


@dataclass
class SinkStage:
    """chunks.embedded → a store. Waits out an unavailable store (back-pressure);
    when a batch is refused, retries its members one by one so only the
    offender is dead-lettered."""

    store: Store
    codecs: Codecs
    dead_letters: DeadLetterSink
    name: str
    breaker: pybreaker.CircuitBreaker | None = None
    # Freshness is the live path's figure; a rebuild replaying old events
    # would only drown it (its progress has metrics of its own).
    records_freshness: bool = True
    # Whether a model was replaced by a replay. After a replay switched models,
    # events still in flight carry the old model's vectors: they are skipped
    # ("superseded"), since the replay re-embedded their documents. None: any model.
    profile: CurrentProfile | None = None
    superseded: int = 0
    # Where to tell what was written (follow mode of the query edge): one
    # notice per written batch, sent before the batch's offsets move. None: no
    # notices (a rebuild fills a generation no query reads yet).
    notices: Producer | None = None
    notice_topic: str = ""

    async def handle(self, messages: Sequence[RawMessage]) -> None:
        with batch_spans(f"docstream.{self.name}", self.name, messages):
            await self._handle(messages)

    def _current(self, event: EmbeddedChunk) -> bool:
        if (
            self.profile is None
            or event.chunk.op != "UPSERT"
            or not self.profile.retired(event.model)
        ):
            return True
        self.superseded += 1
        EVENTS.labels(self.name, "superseded").inc()
        log.info(
            "event skipped: its vector is of a model a replay replaced",
            extra={"doc_id": event.chunk.doc_id, "model": event.model},
        )
        return False

    async def _handle(self, messages: Sequence[RawMessage]) -> None:
        started = time.perf_counter()
        BATCH_SIZE.labels(self.name).observe(len(messages))
        items: list[tuple[RawMessage, SinkEvent]] = []
        occurred: list[float] = []
        for message in messages:
            try:
                record = await with_registry(
                    self.name, partial(self.codecs.embedded.decode, message.value)
                )
                event = EmbeddedChunk.from_record(record)
            except DATA_ERRORS as exc:
                await self.dead_letters.send(self.name, message, exc)
                continue
            if not self._current(event):
                continue
            correlation_id = headers_of(message).get(CORRELATION_HEADER, "")
            items.append((message, sink_event(event, correlation_id)))
            occurred.append(event.chunk.occurred_at / 1000)
        plan = plan_writes(event for _, event in items)
        try:
            await until_written(self.name, lambda: self.store.write(plan), breaker=self.breaker)
            done = [event for _, event in items]
        except StoreRejected:  # some record in the batch: find it, keep the others
            done = await self._one_by_one(items)
        written = len(done)
        now = time.time()
        await self._notify(done, now)
        for at in occurred if self.records_freshness else ():
            FRESHNESS_SECONDS.labels(self.name).observe(max(0.0, now - at))
        EVENTS.labels(self.name, "ok").inc(written)
        STAGE_SECONDS.labels(self.name).observe(time.perf_counter() - started)

    async def _notify(self, done: list[SinkEvent], now: float) -> None:
        if self.notices is None or not done:
            return
        notice = notice_of(self.name, done, now)
        await self.notices.send(self.notice_topic, None, notice.encode(), [])

    async def _one_by_one(self, items: list[tuple[RawMessage, SinkEvent]]) -> list[SinkEvent]:
        written: list[SinkEvent] = []
        for message, event in items:
            plan = plan_writes([event])
            try:
                await until_written(
                    self.name,
                    lambda p=plan: self.store.write(p),  # type: ignore[misc]
                    breaker=self.breaker,
                )
                written.append(event)
            except StoreRejected as exc:  # only refused data; anything else propagates
                await self.dead_letters.send(self.name, message, exc)
        return written
