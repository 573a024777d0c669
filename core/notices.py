"""The notice a sink sends after it wrote a batch: which documents (and which
of their chunks) the store now holds, or no longer holds.

The sinks send one per written batch to the `chunks.indexed` topic; the query
edge joins the notices of every sink and tells its followers (follow mode of
`GET /query`). It is a small internal message, not a contract of record: JSON,
with a version field, and nothing is rebuilt from it (a lost notice costs a
follower one update, never the indexes anything).

    {"v": 1, "sink": "qdrant-sink", "written_at": 1733230000.123,
     "docs": [{"doc_id": "a", "version": 3, "deleted": false,
               "chunks": ["a#0", "a#1"], "chunk_count": 2, "correlation_id": "…"}]}
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from core.types import DocumentDeletion, SinkEvent

NOTICE_VERSION = 1


class NoticeError(ValueError):
    """Bytes on the notice topic that are not a notice."""


@dataclass(frozen=True)
class IndexedDoc:
    doc_id: str
    version: int
    deleted: bool = False
    chunks: tuple[str, ...] = ()  # the ones this batch wrote
    chunk_count: int = 0  # all the version has: a document may span batches
    correlation_id: str = ""


@dataclass(frozen=True)
class IndexedNotice:
    sink: str
    written_at: float  # seconds since the epoch, when the write returned
    docs: tuple[IndexedDoc, ...] = field(default_factory=tuple)

    def encode(self) -> bytes:
        return json.dumps(
            {
                "v": NOTICE_VERSION,
                "sink": self.sink,
                "written_at": self.written_at,
                "docs": [
                    {
                        "doc_id": d.doc_id,
                        "version": d.version,
                        "deleted": d.deleted,
                        "chunks": list(d.chunks),
                        "chunk_count": d.chunk_count,
                        "correlation_id": d.correlation_id,
                    }
                    for d in self.docs
                ],
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, raw: bytes) -> IndexedNotice:
        try:
            body: Any = json.loads(raw)
            return cls(
                sink=str(body["sink"]),
                written_at=float(body["written_at"]),
                docs=tuple(
                    IndexedDoc(
                        doc_id=str(d["doc_id"]),
                        version=int(d["version"]),
                        deleted=bool(d.get("deleted", False)),
                        chunks=tuple(str(c) for c in d.get("chunks", ())),
                        chunk_count=int(d.get("chunk_count", 0)),
                        correlation_id=str(d.get("correlation_id", "")),
                    )
                    for d in body["docs"]
                ),
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise NoticeError(f"not an indexed notice: {exc!r}") from None


def notice_of(sink: str, events: Iterable[SinkEvent], written_at: float) -> IndexedNotice:
    """One notice for a written batch: its events grouped per document version."""
    docs: dict[tuple[str, int], IndexedDoc] = {}
    for event in events:
        key = (event.doc_id, event.version)
        if isinstance(event, DocumentDeletion):
            docs[key] = IndexedDoc(
                event.doc_id, event.version, deleted=True, correlation_id=event.correlation_id
            )
            continue
        seen = docs.get(key, IndexedDoc(event.doc_id, event.version))
        docs[key] = IndexedDoc(
            event.doc_id,
            event.version,
            chunks=(*seen.chunks, event.chunk_id),
            chunk_count=event.chunk_count,
            correlation_id=event.correlation_id,
        )
    return IndexedNotice(sink, written_at, tuple(docs.values()))
