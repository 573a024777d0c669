"""The three kinds of stage, written against small seams (codec, chunker, embedder,
stores, producer) so they can be read and tested without Faust.

Each handler takes consumed messages and returns only when everything it owes
downstream is acknowledged; an event that can never succeed is dead-lettered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import pybreaker

from core.correlation import (
    CORRELATION_HEADER,
    SCHEMA_HEADER,
    current_correlation_id,
    decode_headers,
    encode_headers,
    propagated,
)
from core.logs import get_logger
from core.metrics import BATCH_SIZE, EVENTS, FRESHNESS_SECONDS, STAGE_SECONDS
from core.notices import notice_of
from core.settings import Topics
from core.tracing import (
    BatchSpans,
    batch_spans,
    consumer_attributes,
    stage_span,
    with_current_trace,
)
from core.types import (
    CurrentProfile,
    GraphStore,
    Producer,
    SinkEvent,
    StoreRejected,
    VectorStore,
)
from schemas.codec import Codecs
from schemas.errors import CodecError
from schemas.events import ChunkEvent, DocumentEvent, EmbeddedChunk, InvalidEvent
from sinks.plan import plan_writes
from sinks.retry import until_written
from streams.deadletter import DeadLetters, DeadLetterSink, RawMessage
from streams.records import chunk_events, content_hash, deletion, embedded, sink_event
from streams.registry_wait import with_registry
from streams.state import Decision, StateTable, dead_lettered, decide, load, next_state

log = get_logger(__name__)

# What makes an event a dead letter: bytes that cannot be decoded (an unknown
# schema included) and records that break a rule. Anything else raised while a
# stage maps its events is a bug in docstream: it fails loudly, and the event
# stays unconsumed.
DATA_ERRORS = (CodecError, InvalidEvent)


def _headers(message: RawMessage) -> dict[str, str]:
    return decode_headers(message.headers)


def _derived_headers(parent: dict[str, str], schema_hex: str) -> list[tuple[str, bytes]]:
    return encode_headers({**propagated(parent), SCHEMA_HEADER: schema_hex})


def check_indexable(doc: DocumentEvent, max_text_bytes: int) -> None:
    """Raise InvalidEvent for an UPSERT that can never be indexed: empty text,
    or text over the limit (one document must not become thousands of chunks)."""
    if doc.op != "UPSERT":
        return
    if not doc.text.strip():
        raise InvalidEvent("text is empty: nothing to index")
    if len(doc.text) > max_text_bytes // 4:  # cheap first: 4 bytes a char at most
        size = len(doc.text.encode("utf-8"))
        if size > max_text_bytes:
            raise InvalidEvent(
                f"text is {size} bytes; the limit is {max_text_bytes} "
                "(DOCSTREAM_MAX_TEXT_BYTES): split the document"
            )


@dataclass
class ChunkStage:
    """documents → chunks: validate, decide against the document's state, cut,
    and publish one ChunkEvent per chunk (or one DELETE)."""

    # The chunker, and the digest kept in each document's state: after a
    # replay changed the profile, status knows which counts to expect.
    profile: CurrentProfile
    codecs: Codecs
    producer: Producer
    dead_letters: DeadLetters
    topics: Topics
    states: StateTable
    name: str = "chunker"
    max_text_bytes: int = 4 * 1024 * 1024

    async def handle(self, message: RawMessage) -> None:
        headers = _headers(message)
        correlation_id = headers.get(CORRELATION_HEADER, "")
        token = current_correlation_id.set(correlation_id)
        started = time.perf_counter()
        attributes = consumer_attributes(self.name, message.topic, message.key, correlation_id)
        try:
            with stage_span("docstream.chunk", headers, attributes):
                await self._handle(message, headers, correlation_id)
        finally:
            STAGE_SECONDS.labels(self.name).observe(time.perf_counter() - started)
            current_correlation_id.reset(token)

    async def _handle(
        self, message: RawMessage, headers: dict[str, str], correlation_id: str
    ) -> None:
        try:
            record = await with_registry(
                self.name, lambda: self.codecs.documents.decode(message.value)
            )
            doc = DocumentEvent.from_record(record)
            check_indexable(doc, self.max_text_bytes)
        except DATA_ERRORS as exc:
            await self.dead_letters.send(self.name, message, exc)
            self._record_failure(message, exc, correlation_id)
            return
        state = load(self.states, doc.doc_id)
        digest = content_hash(doc)
        decision = decide(state, doc, digest)
        if decision in (Decision.STALE, Decision.UNCHANGED):
            EVENTS.labels(self.name, decision.value).inc()
            log.info(
                f"document {decision.value}: skipped",
                extra={"doc_id": doc.doc_id, "version": doc.version},
            )
            if decision is Decision.UNCHANGED:
                self.states[doc.doc_id] = next_state(
                    state, doc, decision, digest, 0, correlation_id
                ).to_dict()
            return
        if decision is Decision.DELETE:
            events = [deletion(doc)]
        else:
            events = chunk_events(doc, self.profile.chunker.chunk(doc.doc_id, doc.text))
        # The chunk span (current) becomes the parent of the chunks it publishes.
        out = _derived_headers(with_current_trace(headers), self.codecs.chunks.fingerprint_hex)
        key = doc.doc_id.encode()
        encoded = await with_registry(
            self.name,
            lambda: [(key, self.codecs.chunks.encode(e.to_record()), out) for e in events],
        )
        await self.producer.send_many(self.topics.chunks, encoded)
        # Only after Kafka has the chunks: a crash before this line replays the
        # document, which re-sends the same chunk ids (harmless).
        count = 0 if decision is Decision.DELETE else len(events)
        self.states[doc.doc_id] = next_state(
            state, doc, decision, digest, count, correlation_id, self.profile.digest
        ).to_dict()
        EVENTS.labels(self.name, decision.value).inc()
        log.info(
            "document chunked" if decision is Decision.INDEX else "document deleted",
            extra={"doc_id": doc.doc_id, "version": doc.version, "chunks": count},
        )

    def _record_failure(self, message: RawMessage, exc: BaseException, correlation_id: str) -> None:
        if not message.key:
            return
        try:
            doc_id = message.key.decode("utf-8")
        except UnicodeDecodeError:
            return
        reason = f"{type(exc).__name__}: {exc}"[:500]
        failed = dead_lettered(load(self.states, doc_id), reason, correlation_id)
        self.states[doc_id] = failed.to_dict()


@dataclass
class EmbedStage:
    """chunks → chunks.embedded: embed a batch at once, off the event loop."""

    profile: CurrentProfile  # the embedder
    codecs: Codecs
    producer: Producer
    dead_letters: DeadLetters
    topics: Topics
    name: str = "embedder"

    async def handle(self, messages: Sequence[RawMessage]) -> None:
        with batch_spans("docstream.embed", self.name, messages) as spans:
            await self._handle(messages, spans)

    async def _handle(self, messages: Sequence[RawMessage], spans: BatchSpans) -> None:
        started = time.perf_counter()
        BATCH_SIZE.labels(self.name).observe(len(messages))
        decoded: list[tuple[RawMessage, ChunkEvent]] = []
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
            await self.producer.send_many(self.topics.chunks_embedded, out)
            EVENTS.labels(self.name, "ok").inc(len(decoded))
        STAGE_SECONDS.labels(self.name).observe(time.perf_counter() - started)

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
                _derived_headers(
                    spans.continued(_headers(message)), self.codecs.embedded.fingerprint_hex
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
            correlation_id = _headers(message).get(CORRELATION_HEADER, "")
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
