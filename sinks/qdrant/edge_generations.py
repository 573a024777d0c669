"""Generations of the Qdrant Edge store: one shard folder per generation
under `QDRANT_PATH/edge`, and a `<alias>.active` file naming the live one
(see `sinks/qdrant/edge.py`, which does the work on its own thread). The
logic is the one of `sinks/qdrant/generations.py`; this name stays for the
callers that build the Edge store's generations."""

from __future__ import annotations

from sinks.qdrant.edge import EdgeVectorStore
from sinks.qdrant.generations import QdrantGenerations


class EdgeGenerations(QdrantGenerations):
    """`core.types.Generations` over shard folders (see the module docstring)."""

    def __init__(self, store: EdgeVectorStore) -> None:
        super().__init__(store)
