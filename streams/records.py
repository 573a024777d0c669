"""Pure conversions between the records on the topics. No I/O: unit-testable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.types import Chunk, IndexedChunk
from schemas.events import DocumentEvent


def chunk_records(doc: DocumentEvent, chunks: Sequence[Chunk]) -> list[dict[str, Any]]:
    """The ChunkEvents of one document version."""
    return [
        {
            "chunk_id": c.chunk_id,
            "doc_id": doc.doc_id,
            "version": doc.version,
            "index": c.index,
            "chunk_count": len(chunks),
            "title": doc.title,
            "text": c.text,
            "start": c.start,
            "end": c.end,
            "source": doc.source,
            "metadata": dict(doc.metadata),
            "occurred_at": doc.occurred_at,
        }
        for c in chunks
    ]


def embedded_record(chunk: dict[str, Any], vector: Sequence[float], model: str) -> dict[str, Any]:
    """A ChunkEvent plus its vector: an EmbeddedChunk."""
    return {**chunk, "vector": list(vector), "model": model}


def indexed_chunk(record: dict[str, Any], correlation_id: str) -> IndexedChunk:
    """What the sinks write, from an EmbeddedChunk record and its headers."""
    return IndexedChunk(
        chunk_id=record["chunk_id"],
        doc_id=record["doc_id"],
        version=int(record["version"]),
        index=int(record["index"]),
        chunk_count=int(record["chunk_count"]),
        title=record["title"],
        text=record["text"],
        vector=list(record["vector"]),
        correlation_id=correlation_id,
        source=record["source"],
        metadata=dict(record["metadata"]),
    )
