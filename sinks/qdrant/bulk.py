"""Bulk writes into a fresh vector generation (`ops/jobs/bulk.py` decides what
is fresh): the points of documents the generation does not hold yet, upserted
with nothing to delete first. The index is deferred by the generation itself
(`QdrantGenerations.begin` creates it so, `activate` builds it once)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from core.types import IndexedChunk


class BulkUpserts(Protocol):
    """What both Qdrant stores offer (`server.py`, `edge.py`)."""

    is_pinned: bool

    async def bulk_upsert(self, chunks: Sequence[IndexedChunk]) -> None: ...


class QdrantBulk:
    def __init__(self, store: BulkUpserts) -> None:
        if not store.is_pinned:
            raise ValueError("bulk writes go to a pinned generation, never the active one")
        self.store = store

    async def create(self, chunks: list[IndexedChunk]) -> None:
        if chunks:
            await self.store.bulk_upsert(chunks)
