"""Generations of the vector index on a real Qdrant, embedded (qdrant-client's
local mode) and a server (the session's own, tests/integration/conftest.py): a
new collection fills beside the live one, the alias switch is one step, a
server's new generation fills without an HNSW graph (`m = 0`) and gets one
before the switch, and a collection from before generations is taken over."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import QdrantSettings
from core.types import IndexedChunk, WritePlan
from sinks.qdrant.generations import QdrantGenerations
from sinks.qdrant.server import HNSW_M, QdrantVectorStore
from tests.integration.helpers import server_store_settings

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


@pytest.fixture(params=["local", "server"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> QdrantSettings:
    """An alias of the test's own: in a fresh folder, or on the shared server."""
    if request.param == "local":
        return QdrantSettings(path=tmp_path / "q", collection="chunks")
    return server_store_settings(request.getfixturevalue("qdrant_server"))


def graph_degree(store: QdrantVectorStore, name: str) -> int | None:
    """A server collection's HNSW `m`; None embedded (local mode has no graph)."""
    if store.settings.embedded:
        return None
    return store.client.get_collection(name).config.hnsw_config.m


async def test_a_new_generation_is_invisible_until_the_alias_moves(
    settings: QdrantSettings,
) -> None:
    alias = settings.collection
    store = QdrantVectorStore(settings, dimension=3)
    await store.ensure_schema()
    generations = QdrantGenerations(store)
    assert (await generations.state()).active == f"{alias}-g0"
    await store.write(plan("d", 2))

    building = await generations.begin()
    assert building == f"{alias}-g1" and await generations.begin() == building  # resumable
    await store.pinned(building).write(plan("d", 3))
    assert await store.count("d") == 2, "the alias still points at the old generation"
    assert graph_degree(store, building) in (None, 0), "a server fills without a graph"

    assert await generations.activate(building) == f"{alias}-g0"
    assert graph_degree(store, building) in (None, HNSW_M), "built before the switch"
    assert await store.count("d") == 3
    hits = await store.search([1.0, 0.0, 2.0], limit=5)
    assert len(hits) == 3
    with pytest.raises(ValueError, match="active"):
        await generations.drop(building)
    await generations.drop(f"{alias}-g0")
    assert await generations.state() == type(await generations.state())(building, None)
    await store.close()


async def test_a_collection_from_before_generations_is_taken_over(
    settings: QdrantSettings,
) -> None:
    alias = settings.collection
    store = QdrantVectorStore(settings, dimension=3)
    await store.create_collection(alias)  # what older versions created
    await store.ensure_schema()
    await store.write(plan("d", 1))
    generations = QdrantGenerations(store)
    assert (await generations.state()).active == alias
    building = await generations.begin()
    await store.pinned(building).write(plan("d", 2))
    assert await generations.activate(building) == alias
    assert await store.count("d") == 2
    await store.close()
