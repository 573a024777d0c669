"""Generations of the vector index on a real (embedded) Qdrant: a new
collection fills beside the live one, the alias switch is one step, and a
collection from before generations is taken over."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import QdrantSettings
from core.types import IndexedChunk, WritePlan
from sinks.qdrant.generations import QdrantGenerations
from sinks.qdrant.server import QdrantVectorStore

pytestmark = pytest.mark.integration


def plan(doc: str, count: int) -> WritePlan:
    upserts = [
        IndexedChunk(
            f"00000000-0000-5000-8000-{index:012d}",
            doc,
            1,
            index,
            count,
            "T",
            f"text {index}",
            [1.0, 0.0, float(index)],
            "corr",
        )
        for index in range(count)
    ]
    return WritePlan(upserts=upserts, chunk_counts={doc: count})


async def test_a_new_generation_is_invisible_until_the_alias_moves(tmp_path: Path) -> None:
    store = QdrantVectorStore(QdrantSettings(path=tmp_path / "q", collection="chunks"), dimension=3)
    await store.ensure_schema()
    generations = QdrantGenerations(store)
    assert (await generations.state()).active == "chunks-g0"
    await store.write(plan("d", 2))

    building = await generations.begin()
    assert building == "chunks-g1" and await generations.begin() == building  # resumable
    await store.pinned(building).write(plan("d", 3))
    assert await store.count("d") == 2, "the alias still points at the old generation"

    assert await generations.activate(building) == "chunks-g0"
    assert await store.count("d") == 3
    hits = await store.search([1.0, 0.0, 2.0], limit=5)
    assert len(hits) == 3
    with pytest.raises(ValueError, match="active"):
        await generations.drop(building)
    await generations.drop("chunks-g0")
    assert await generations.state() == type(await generations.state())("chunks-g1", None)
    await store.close()


async def test_a_collection_from_before_generations_is_taken_over(tmp_path: Path) -> None:
    store = QdrantVectorStore(QdrantSettings(path=tmp_path / "q", collection="chunks"), dimension=3)
    await store.create_collection("chunks")  # what older versions created
    await store.ensure_schema()
    await store.write(plan("d", 1))
    generations = QdrantGenerations(store)
    assert (await generations.state()).active == "chunks"
    building = await generations.begin()
    await store.pinned(building).write(plan("d", 2))
    assert await generations.activate(building) == "chunks"
    assert await store.count("d") == 2
    await store.close()
