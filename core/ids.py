"""Derived ids: the same document and chunk index always give the same chunk id,
so every write is an idempotent upsert and a replay lands on the same points."""

from __future__ import annotations

import uuid

# Fixed namespace for docstream's uuid5 ids. Changing it would orphan every index.
DOCSTREAM_NAMESPACE = uuid.UUID("6f1d3a52-2c4e-5b8a-9d7e-0c3b1a2f4e5d")


def chunk_id(doc_id: str, index: int) -> str:
    return str(uuid.uuid5(DOCSTREAM_NAMESPACE, f"{doc_id}#{index}"))
