"""What both Qdrant stores (`server.py`, `edge.py`) are made of before their
engine: the settings, the vector size, the BM25 encoder, and which collection
they address (the alias, or one generation pinned by a rebuild)."""

from __future__ import annotations

import copy
from typing import Self

from core.settings import QdrantSettings
from core.types import Hit, SearchFilter
from sinks.qdrant.lexical import Bm25, SparseTerms


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
