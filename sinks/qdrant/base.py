"""What both Qdrant stores (`server.py`, `edge.py`) are made of before their
engine: the settings, the vector size, the BM25 encoder, and which collection
they address (the alias, or one generation pinned by a rebuild)."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Self

from core.settings import QdrantSettings
from core.types import Hit, IndexedChunk, SearchFilter
from sinks.qdrant.lexical import Bm25, SparseTerms

MAX_METADATA_INDEXES = 32  # metadata keys beyond these are filtered by a scan


def metadata_keys_to_index(indexed: set[str], chunks: Iterable[IndexedChunk]) -> list[str]:
    """The payload paths (`metadata.<key>`) of keys first seen in `chunks`
    that get a keyword index, so `filter[key]=value` stays an index lookup
    (unindexed, a filter reads every payload), up to MAX_METADATA_INDEXES."""
    room = MAX_METADATA_INDEXES - sum(k.startswith("metadata.") for k in indexed)
    keys = {f"metadata.{key}" for chunk in chunks for key in chunk.metadata}
    return sorted(keys - indexed)[: max(room, 0)]


class AliasedStore:
    def __init__(self, settings: QdrantSettings, dimension: int, bm25: Bm25 | None = None) -> None:
        self.settings = settings
        self.dimension = dimension
        self.bm25 = bm25 or Bm25()
        self.alias = settings.collection
        self.collection = settings.collection  # the alias, or a pinned generation

    @property
    def is_pinned(self) -> bool:
        return self.collection != self.alias

    def pinned(self, generation: str) -> Self:
        """The same client (or shards and thread), reading and writing one generation."""
        store = copy.copy(self)
        store.collection = generation
        return store

    async def search_lexical(
        self, text: str, limit: int, where: SearchFilter | None = None
    ) -> list[Hit]:
        """BM25 over the sparse vectors; a text with no indexable term finds nothing."""
        terms = self.bm25.query(text)
        if not terms.indices:
            return []
        return await self._search_sparse(terms, limit, where)

    async def _search_sparse(
        self, terms: SparseTerms, limit: int, where: SearchFilter | None
    ) -> list[Hit]:
        raise NotImplementedError  # each engine queries its own way
