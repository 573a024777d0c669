"""The parameters of the graph's write statements, built in Python from a
batch of chunks: one row per document, per link and per entity, so each
statement writes what several chunks share once per batch. Pure: the same
chunks always give the same rows. Both the live path (`live.py`) and the bulk
path (`bulk.py`) send them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.types import IndexedChunk
from sinks.neo4j.entities import extract_entities


def chunk_row(chunk: IndexedChunk) -> dict[str, Any]:
    """The properties of a :Chunk node, as the statements set them."""
    return {**chunk.provenance(), "chunk_id": chunk.chunk_id, "index": chunk.index}


def document_rows(chunks: Iterable[IndexedChunk]) -> list[dict[str, Any]]:
    """One row per document: its properties (from its last chunk, as one SET
    per chunk would leave them) and its chunks in index order."""
    docs: dict[str, list[IndexedChunk]] = {}
    for chunk in chunks:
        docs.setdefault(chunk.doc_id, []).append(chunk)
    rows = []
    for doc_id, members in docs.items():
        last = members[-1]
        ordered = sorted(members, key=lambda c: c.index)
        rows.append(
            {
                "doc_id": doc_id,
                "title": last.title,
                "source": last.source,
                "version": last.version,
                "correlation_id": last.correlation_id,
                "chunks": [chunk_row(c) for c in ordered],
            }
        )
    return rows


def link_rows(chunks: Iterable[IndexedChunk]) -> list[dict[str, str]]:
    """Each document's links once (a document's last chunk has its version's links)."""
    links: dict[str, list[str]] = {}
    for chunk in chunks:
        links[chunk.doc_id] = chunk.links
    return [
        {"source": doc_id, "target": target}
        for doc_id, targets in links.items()
        for target in dict.fromkeys(targets)
    ]


def entity_rows(chunks: Iterable[IndexedChunk]) -> list[dict[str, Any]]:
    """The batch's entities, each once, with the chunks that mention it (a chunk
    once per entity key). The name is the first spelling met, as a MERGE's ON
    CREATE keeps it."""
    entities: dict[str, dict[str, Any]] = {}
    for chunk in chunks:
        for name in extract_entities(chunk.text):
            entry = entities.setdefault(name.lower(), {"name": name, "chunk_ids": {}})
            entry["chunk_ids"][chunk.chunk_id] = None
    return [
        {"key": key, "name": entry["name"], "chunk_ids": list(entry["chunk_ids"])}
        for key, entry in entities.items()
    ]


def next_rows(chunks: Iterable[IndexedChunk]) -> list[dict[str, Any]]:
    """What the NEXT statement looks up for each chunk: its document and index."""
    return [{"chunk_id": c.chunk_id, "doc_id": c.doc_id, "index": c.index} for c in chunks]
