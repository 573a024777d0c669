"""documents → chunks, a batch of documents at a time.

Each document of a batch is decoded, validated, decided against its state (the
state an earlier document of the same batch left, else the table's), cut, and
its chunks queued for Kafka without waiting. Then the stage waits once for the
broker to acknowledge every chunk of the batch, and only then writes each
document's state, in the batch's order, each in its own event's partition, and
acknowledges its event. Waiting once per document capped the chunker at the
broker's round trip (about 25 documents/s on two shared cores).

A stop or a crash anywhere before a document's state is written leaves its
event unacknowledged: it is read again, decided against the state it had, and
its chunks re-sent with the same chunk ids (the sinks upsert: nothing
observable doubles). A state written but its event not acknowledged reads as
stale the next time: its chunks were already in Kafka.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.correlation import CORRELATION_HEADER, current_correlation_id
from core.logs import get_logger
from core.metrics import BATCH_SIZE, EVENTS, STAGE_SECONDS
from core.settings import Topics
from core.tracing import consumer_attributes, stage_span, with_current_trace
from core.types import CurrentProfile, Producer
from schemas.codec import Codecs
from schemas.events import DocumentEvent
from streams.deadletter import DeadLetters, RawMessage
from streams.records import chunk_events, content_hash, deletion
from streams.registry_wait import with_registry
from streams.stage_io import DATA_ERRORS, check_indexable, derived_headers, headers_of
from streams.state import (
    Decision,
    DocumentState,
    StateTable,
    dead_lettered,
    decide,
    load,
    next_state,
    save,
)

# The stages' logger, as before the chunk stage had a module of its own: what
# operators filter the stages' lines by does not change.
log = get_logger("streams.stages")

# Called with a document's index in its batch once its state is written: the
# worker acknowledges that event (streams/app.py).
Acknowledge = Callable[[int], Awaitable[object]]


@dataclass
class Handled:
    """One document of a batch, handled up to its chunks' acknowledgement."""

    message: RawMessage
    correlation_id: str
    doc_id: str = ""
    state: DocumentState | None = None  # written once the batch's chunks are acknowledged
    delivery: Awaitable[None] | None = None  # its chunks' acknowledgement
    outcome: str = ""  # the decision, counted once the state is written
    note: str = ""  # the log line then
    details: dict[str, Any] = field(default_factory=dict)


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
        await self.handle_batch([message])

    async def handle_batch(
        self, messages: Sequence[RawMessage], acknowledge: Acknowledge | None = None
    ) -> None:
        """Handle `messages` (in their consumed order) and return once every one
        is finished: its chunks acknowledged, its state written, `acknowledge`d."""
        started = time.perf_counter()
        BATCH_SIZE.labels(self.name).observe(len(messages))
        handled: list[Handled] = []
        # The states the batch decided so far, not yet in the table: a second
        # version of a document in the same batch is decided against the first.
        decided: dict[str, DocumentState | None] = {}
        try:
            try:
                for message in messages:
                    handled.append(await self._one(message, decided))
            except Exception:
                # A bug of ours (bad data is dead-lettered): the documents before
                # it are finished, so only the failing one stays unconsumed.
                await self._finish(handled, acknowledge)
                raise
            await self._finish(handled, acknowledge)
        finally:
            STAGE_SECONDS.labels(self.name).observe(time.perf_counter() - started)

    async def _one(self, message: RawMessage, decided: dict[str, DocumentState | None]) -> Handled:
        headers = headers_of(message)
        correlation_id = headers.get(CORRELATION_HEADER, "")
        token = current_correlation_id.set(correlation_id)
        attributes = consumer_attributes(self.name, message.topic, message.key, correlation_id)
        try:
            with stage_span("docstream.chunk", headers, attributes):
                return await self._send(Handled(message, correlation_id), headers, decided)
        finally:
            current_correlation_id.reset(token)

    async def _send(
        self, handled: Handled, headers: dict[str, str], decided: dict[str, DocumentState | None]
    ) -> Handled:
        message = handled.message
        try:
            record = await with_registry(
                self.name, lambda: self.codecs.documents.decode(message.value)
            )
            doc = DocumentEvent.from_record(record)
            check_indexable(doc, self.max_text_bytes)
        except DATA_ERRORS as exc:
            await self.dead_letters.send(self.name, message, exc)
            self._failed(handled, exc, decided)
            return handled
        state = self._state(doc.doc_id, decided)
        digest = content_hash(doc)
        decision = decide(state, doc, digest)
        handled.doc_id, handled.outcome = doc.doc_id, decision.value
        handled.details = {"doc_id": doc.doc_id, "version": doc.version}
        if decision in (Decision.STALE, Decision.UNCHANGED):
            handled.note = f"document {decision.value}: skipped"
            if decision is Decision.UNCHANGED:
                handled.state = next_state(state, doc, decision, digest, 0, handled.correlation_id)
                decided[doc.doc_id] = handled.state
            return handled
        if decision is Decision.DELETE:
            events = [deletion(doc)]
        else:
            events = chunk_events(doc, self.profile.chunker.chunk(doc.doc_id, doc.text))
        # The chunk span (current) becomes the parent of the chunks it publishes.
        out = derived_headers(with_current_trace(headers), self.codecs.chunks.fingerprint_hex)
        key = doc.doc_id.encode()
        encoded = await with_registry(
            self.name,
            lambda: [(key, self.codecs.chunks.encode(e.to_record()), out) for e in events],
        )
        handled.delivery = await self.producer.send_soon(self.topics.chunks, encoded)
        count = 0 if decision is Decision.DELETE else len(events)
        handled.state = next_state(
            state, doc, decision, digest, count, handled.correlation_id, self.profile.digest
        )
        decided[doc.doc_id] = handled.state
        handled.note = "document chunked" if decision is Decision.INDEX else "document deleted"
        handled.details["chunks"] = count
        return handled

    async def _finish(self, handled: list[Handled], acknowledge: Acknowledge | None) -> None:
        deliveries = [h.delivery for h in handled if h.delivery is not None]
        if deliveries:
            # The one wait of the batch: Kafka has every chunk before any state moves.
            await asyncio.gather(*deliveries)
        for index, done in enumerate(handled):
            token = current_correlation_id.set(done.correlation_id)
            try:
                if done.state is not None:
                    save(self.states, done.doc_id, done.state, done.message.partition)
                if done.outcome:
                    EVENTS.labels(self.name, done.outcome).inc()
                if done.note:
                    log.info(done.note, extra=done.details)
            finally:
                current_correlation_id.reset(token)
            if acknowledge is not None:
                await acknowledge(index)

    def _state(self, doc_id: str, decided: dict[str, DocumentState | None]) -> DocumentState | None:
        return decided[doc_id] if doc_id in decided else load(self.states, doc_id)

    def _failed(
        self, handled: Handled, exc: BaseException, decided: dict[str, DocumentState | None]
    ) -> None:
        """A dead-lettered event is recorded against its key, if it names a document."""
        key = handled.message.key
        if not key:
            return
        try:
            doc_id = key.decode("utf-8")
        except UnicodeDecodeError:
            return
        reason = f"{type(exc).__name__}: {exc}"[:500]
        handled.doc_id = doc_id
        handled.state = dead_lettered(self._state(doc_id, decided), reason, handled.correlation_id)
        decided[doc_id] = handled.state
