"""Pure conversions between the events on the topics. No I/O: unit-testable."""

from __future__ import annotations

import hashlib
import json
from array import array
from collections.abc import Sequence

from core.types import Chunk, DocumentDeletion, IndexedChunk, SinkEvent
from schemas.events import ChunkEvent, DocumentEvent, EmbeddedChunk, Op


def content_hash(doc: DocumentEvent) -> str:
    """What decides the index: the same hash means nothing to re-embed."""
    content = [doc.title, doc.text, doc.source, sorted(doc.metadata.items()), doc.links]
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()


def _event(doc: DocumentEvent, chunk: Chunk, chunk_count: int, op: Op = "UPSERT") -> ChunkEvent:
    return ChunkEvent(
        chunk_id=chunk.chunk_id,
        doc_id=doc.doc_id,
        version=doc.version,
        index=chunk.index,
        chunk_count=chunk_count,
        text=chunk.text,
        start=chunk.start,
        end=chunk.end,
        occurred_at=doc.occurred_at,
        op=op,
        title=doc.title,
        source=doc.source,
        metadata=dict(doc.metadata),
        links=list(doc.links),
    )


def chunk_events(doc: DocumentEvent, chunks: Sequence[Chunk]) -> list[ChunkEvent]:
    """The ChunkEvents of one document version."""
    return [_event(doc, c, len(chunks)) for c in chunks]


def deletion(doc: DocumentEvent) -> ChunkEvent:
    """The one ChunkEvent that tells the stores to drop a whole document:
    index -1, no chunk id, no text."""
    return _event(doc, Chunk("", doc.doc_id, -1, "", 0, 0), 0, "DELETE")


def embedded(chunk: ChunkEvent, vector: Sequence[float], model: str) -> EmbeddedChunk:
    """A ChunkEvent plus its vector."""
    return EmbeddedChunk(chunk, model, array("f", vector))


def sink_event(event: EmbeddedChunk, correlation_id: str) -> SinkEvent:
    """What the sinks apply, from an EmbeddedChunk and its headers: the one
    mapping from the topic's event to the stores' chunk."""
    chunk = event.chunk
    if chunk.op == "DELETE":
        return DocumentDeletion(chunk.doc_id, chunk.version, correlation_id)
    return indexed_chunk(event, correlation_id, event.vector.tolist())


def indexed_chunk(
    event: EmbeddedChunk, correlation_id: str, vector: Sequence[float]
) -> IndexedChunk:
    """The stores' chunk of an UPSERT, with `vector` as the caller keeps it (a
    list on the live path; a bulk rebuild keeps the decoder's array)."""
    chunk = event.chunk
    return IndexedChunk(
        chunk_id=chunk.chunk_id,
        doc_id=chunk.doc_id,
        version=chunk.version,
        index=chunk.index,
        chunk_count=chunk.chunk_count,
        title=chunk.title,
        text=chunk.text,
        vector=vector,
        correlation_id=correlation_id,
        source=chunk.source,
        metadata=dict(chunk.metadata),
        links=list(chunk.links),
    )
