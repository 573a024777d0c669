"""What both Qdrant stores (`server.py`, `edge.py`) are made of before their
engine: the settings, the vector size, the BM25 encoder, and which collection
they address (the alias, or one generation pinned by a rebuild)."""

from __future__ import annotations

import copy
from typing import Self

from core.settings import QdrantSettings
from sinks.qdrant.lexical import Bm25


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
