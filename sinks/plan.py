"""Fold a batch of sink events into one WritePlan, keeping each document's events
in order: a DELETE cancels the chunks before it in the batch, a later version's
chunks replace an earlier one's, and the last version's chunk count decides
which chunks are orphans. Pure: the same batch always gives the same plan."""

from __future__ import annotations

from collections.abc import Iterable

from core.types import DocumentDeletion, IndexedChunk, SinkEvent, WritePlan


def plan_writes(events: Iterable[SinkEvent]) -> WritePlan:
    deletions: dict[str, DocumentDeletion] = {}
    upserts: dict[str, dict[str, IndexedChunk]] = {}
    counts: dict[str, int] = {}
    for event in events:
        if isinstance(event, DocumentDeletion):
            deletions[event.doc_id] = event
            upserts.pop(event.doc_id, None)
            counts.pop(event.doc_id, None)
            continue
        chunks = upserts.setdefault(event.doc_id, {})
        previous = next(iter(chunks.values()), None)
        if previous is not None and previous.version != event.version:
            if event.version < previous.version:
                continue  # an older version arriving late changes nothing
            chunks.clear()
        chunks[event.chunk_id] = event
        counts[event.doc_id] = event.chunk_count
    return WritePlan(
        deletions=list(deletions.values()),
        upserts=[chunk for chunks in upserts.values() for chunk in chunks.values()],
        chunk_counts=counts,
    )
