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
from typing import Any

from core.correlation import (
    CORRELATION_HEADER,
    SCHEMA_HEADER,
    current_correlation_id,
    decode_headers,
    encode_headers,
    propagated,
)
from core.logs import get_logger
from core.metrics import BATCH_SIZE, EVENTS, STAGE_SECONDS
from core.settings import Topics
from core.types import Chunker, Embedder, GraphStore, IndexedChunk, VectorStore
from schemas.codec import Codecs
from schemas.errors import CodecError
from schemas.events import DocumentEvent, InvalidEvent
from sinks.retry import until_written
from streams.deadletter import DeadLetters, RawMessage
from streams.producer import FaustProducer
from streams.records import chunk_records, embedded_record, indexed_chunk

log = get_logger(__name__)


def _headers(message: RawMessage) -> dict[str, str]:
    return decode_headers(message.headers)


def _derived_headers(parent: dict[str, str], schema_hex: str) -> list[tuple[str, bytes]]:
    return encode_headers({**propagated(parent), SCHEMA_HEADER: schema_hex})


@dataclass
class ChunkStage:
    """documents → chunks: validate, cut, and publish one ChunkEvent per chunk."""

    chunker: Chunker
    codecs: Codecs
    producer: FaustProducer
    dead_letters: DeadLetters
    topics: Topics
    name: str = "chunker"

    async def handle(self, message: RawMessage) -> None:
        headers = _headers(message)
        token = current_correlation_id.set(headers.get(CORRELATION_HEADER, ""))
        started = time.perf_counter()
        try:
            try:
                doc = DocumentEvent.from_record(self.codecs.documents.decode(message.value))
                if doc.op == "UPSERT" and not doc.text.strip():
                    raise InvalidEvent("text is empty: nothing to index")
            except (CodecError, InvalidEvent, TypeError, KeyError) as exc:
                await self.dead_letters.send(self.name, message, exc)
                return
            if doc.op == "DELETE":
                # Removal from the stores arrives with the document-state table.
                EVENTS.labels(self.name, "skipped").inc()
                log.info("delete not applied yet", extra={"doc_id": doc.doc_id})
                return
            records = chunk_records(doc, self.chunker.chunk(doc.doc_id, doc.text))
            out = _derived_headers(headers, self.codecs.chunks.fingerprint_hex)
            key = doc.doc_id.encode()
            await self.producer.send_many(
                self.topics.chunks, [(key, self.codecs.chunks.encode(r), out) for r in records]
            )
            EVENTS.labels(self.name, "ok").inc()
            log.info(
                "document chunked",
                extra={"doc_id": doc.doc_id, "version": doc.version, "chunks": len(records)},
            )
        finally:
            STAGE_SECONDS.labels(self.name).observe(time.perf_counter() - started)
            current_correlation_id.reset(token)


@dataclass
class EmbedStage:
    """chunks → chunks.embedded: embed a batch at once, off the event loop."""

    embedder: Embedder
    codecs: Codecs
    producer: FaustProducer
    dead_letters: DeadLetters
    topics: Topics
    name: str = "embedder"

    async def handle(self, messages: Sequence[RawMessage]) -> None:
        started = time.perf_counter()
        BATCH_SIZE.labels(self.name).observe(len(messages))
        decoded: list[tuple[RawMessage, dict[str, Any]]] = []
        for message in messages:
            try:
                decoded.append((message, self.codecs.chunks.decode(message.value)))
            except CodecError as exc:
                await self.dead_letters.send(self.name, message, exc)
        if decoded:
            texts = [record["text"] for _, record in decoded]
            # The model runs in a thread: the loop keeps heartbeats and queries going.
            vectors = await asyncio.to_thread(self.embedder.embed, texts)
            out = [
                (
                    message.key,
                    self.codecs.embedded.encode(
                        embedded_record(record, vector, self.embedder.model_name)
                    ),
                    _derived_headers(_headers(message), self.codecs.embedded.fingerprint_hex),
                )
                for (message, record), vector in zip(decoded, vectors, strict=True)
            ]
            await self.producer.send_many(self.topics.chunks_embedded, out)
            EVENTS.labels(self.name, "ok").inc(len(decoded))
        STAGE_SECONDS.labels(self.name).observe(time.perf_counter() - started)


Store = VectorStore | GraphStore


@dataclass
class SinkStage:
    """chunks.embedded → a store. Waits out an unavailable store (back-pressure);
    when a batch is refused, retries its members one by one so only the
    offender is dead-lettered."""

    store: Store
    codecs: Codecs
    dead_letters: DeadLetters
    name: str

    async def handle(self, messages: Sequence[RawMessage]) -> None:
        started = time.perf_counter()
        BATCH_SIZE.labels(self.name).observe(len(messages))
        items: list[tuple[RawMessage, IndexedChunk]] = []
        for message in messages:
            try:
                record = self.codecs.embedded.decode(message.value)
                items.append(
                    (message, indexed_chunk(record, _headers(message).get(CORRELATION_HEADER, "")))
                )
            except (CodecError, KeyError, TypeError, ValueError) as exc:
                await self.dead_letters.send(self.name, message, exc)
        try:
            await until_written(self.name, lambda: self.store.upsert([c for _, c in items]))
        except Exception:
            await self._one_by_one(items)
        EVENTS.labels(self.name, "ok").inc(len(items))
        STAGE_SECONDS.labels(self.name).observe(time.perf_counter() - started)

    async def _one_by_one(self, items: list[tuple[RawMessage, IndexedChunk]]) -> None:
        for message, chunk in items:
            try:
                await until_written(self.name, lambda c=chunk: self.store.upsert([c]))  # type: ignore[misc]
            except Exception as exc:
                await self.dead_letters.send(self.name, message, exc)
