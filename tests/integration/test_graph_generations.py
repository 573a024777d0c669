"""Generations of the graph on the real Neo4j: a pinned store fills a new
generation beside the active one, queries see only the active one, and the
switch and the drop do what they say."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from core.settings import Settings
from core.types import IndexedChunk, WritePlan
from sinks.neo4j.generations import GraphGenerations
from sinks.neo4j.store import Neo4jGraphStore

pytestmark = pytest.mark.integration


def chunks(doc_id: str, texts: list[str]) -> WritePlan:
    upserts = [
        IndexedChunk(f"{doc_id}-{i}", doc_id, 1, i, len(texts), "", t, [0.0], "corr")
        for i, t in enumerate(texts)
    ]
    return WritePlan(upserts=upserts, chunk_counts={doc_id: len(texts)})


@pytest.fixture
async def store(
    base_settings: Settings, run_id: str, stack: object
) -> AsyncIterator[Neo4jGraphStore]:
    settings = replace(base_settings.neo4j, graph=f"{run_id}-generations")
    active = Neo4jGraphStore(settings)
    await active.ensure_schema()
    yield active
    await active.driver.execute_query(
        "MATCH (n) WHERE n.gen STARTS WITH $g OR n.name = $g DETACH DELETE n", g=settings.graph
    )
    await active.close()


async def test_a_pinned_generation_stays_invisible_until_it_is_activated(
    store: Neo4jGraphStore, run_id: str
) -> None:
    doc = f"{run_id}-gen-doc"
    generations = GraphGenerations(store)
    await store.write(chunks(doc, ["alpha", "beta"]))
    first = (await generations.state()).active
    assert first == f"{store.settings.graph}:0"

    building = await generations.begin()
    assert building != first and await generations.begin() == building  # resumable
    await store.pinned(building).write(chunks(doc, ["alpha", "beta", "gamma"]))
    assert await store.count(doc) == 2, "queries read the active generation only"
    neighbours = await store.neighbours([f"{doc}-0"], per_edge=5, edges=["next"])
    assert [n.hit.chunk_id for n in neighbours] == [f"{doc}-1"]

    assert await generations.activate(building) == first
    assert await store.count(doc) == 3
    neighbours = await store.neighbours([f"{doc}-1"], per_edge=5, edges=["next"])
    assert sorted(n.hit.chunk_id for n in neighbours) == [f"{doc}-0", f"{doc}-2"]
    await store.write(chunks(doc, ["alpha"]))  # the live sink now writes the new one
    assert await generations.size(building) == {"chunks": 1, "documents": 1}

    with pytest.raises(ValueError, match="active"):
        await generations.drop(building)
    await generations.drop(first)
    assert await generations.size(first) == {"chunks": 0, "documents": 0}
    assert (await generations.state()).building is None
