"""Pure conversions between the records on the topics. No I/O: unit-testable."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from core.types import Chunk, DocumentDeletion, IndexedChunk, SinkEvent
from schemas.events import DocumentEvent


def content_hash(doc: DocumentEvent) -> str:
    """What decides the index: the same hash means nothing to re-embed."""
    content = [doc.title, doc.text, doc.source, sorted(doc.metadata.items()), doc.links]
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()


def _base(doc: DocumentEvent) -> dict[str, Any]:
    return {
        "doc_id": doc.doc_id,
        "version": doc.version,
        "title": doc.title,
        "source": doc.source,
        "metadata": dict(doc.metadata),
        "links": list(doc.links),
        "occurred_at": doc.occurred_at,
    }


def chunk_records(doc: DocumentEvent, chunks: Sequence[Chunk]) -> list[dict[str, Any]]:
    """The ChunkEvents of one document version."""
    return [
        {
            **_base(doc),
            "op": "UPSERT",
            "chunk_id": c.chunk_id,
            "index": c.index,
            "chunk_count": len(chunks),
            "text": c.text,
            "start": c.start,
            "end": c.end,
        }
        for c in chunks
    ]


def deletion_record(doc: DocumentEvent) -> dict[str, Any]:
    """The one ChunkEvent that tells the stores to drop a whole document."""
    record = {**_base(doc), "op": "DELETE", "chunk_id": "", "index": -1, "chunk_count": 0}
    return {**record, "text": "", "start": 0, "end": 0}


def embedded_record(chunk: dict[str, Any], vector: Sequence[float], model: str) -> dict[str, Any]:
    """A ChunkEvent plus its vector: an EmbeddedChunk."""
    return {**chunk, "vector": list(vector), "model": model}


def sink_event(record: dict[str, Any], correlation_id: str) -> SinkEvent:
    """What the sinks apply, from an EmbeddedChunk record and its headers."""
    if record["op"] == "DELETE":
        return DocumentDeletion(record["doc_id"], int(record["version"]), correlation_id)
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
        links=list(record["links"]),
    )
