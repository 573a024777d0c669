"""Which metadata keys get a payload index (sinks/qdrant/base.py): both
engines index a key when it first appears, up to a cap."""

from __future__ import annotations

from core.types import IndexedChunk
from sinks.qdrant.base import MAX_METADATA_INDEXES, metadata_keys_to_index


def chunk(**metadata: str) -> IndexedChunk:
    return IndexedChunk("id", "d", 1, 0, 1, "T", "text", [1.0], "corr", metadata=metadata)


def test_new_keys_are_indexed_once_in_a_stable_order() -> None:
    indexed = {"doc_id", "metadata.team"}
    chunks = [chunk(team="a", region="eu"), chunk(author="x", region="us")]
    assert metadata_keys_to_index(indexed, chunks) == ["metadata.author", "metadata.region"]
    assert metadata_keys_to_index(indexed | {"metadata.author", "metadata.region"}, chunks) == []


def test_no_more_than_the_cap_of_metadata_keys_counting_those_indexed() -> None:
    indexed = {"doc_id", *(f"metadata.k{i}" for i in range(MAX_METADATA_INDEXES - 1))}
    keys = metadata_keys_to_index(indexed, [chunk(b="1", a="2", c="3")])
    assert keys == ["metadata.a"]
    assert metadata_keys_to_index(indexed | {"metadata.a"}, [chunk(z="1")]) == []
