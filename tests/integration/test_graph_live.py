"""The live write path on the real Neo4j: a replayed batch changes nothing, a
new version's edges replace the last version's (NEXT, MENTIONS, LINKS_TO), the
NEXT chain is whole whatever order the chunks came in, and the neighbours
query reads what it wrote."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from core.settings import Settings
from core.types import IndexedChunk, WritePlan
from sinks.neo4j.store import MENTIONS_MAX_DEGREE, Neo4jGraphStore

pytestmark = pytest.mark.integration


def chunk(
    doc: str, index: int, count: int, text: str, version: int = 1, **more: Any
) -> IndexedChunk:
    return IndexedChunk(
        chunk_id=f"{doc}#{index}",
        doc_id=doc,
        version=version,
        index=index,
        chunk_count=count,
        title=f"Title of {doc}",
        text=text,
        vector=[0.0],
        correlation_id=f"corr-{version}",
        source="live-test",
        **more,
    )


def plan(*chunks: IndexedChunk) -> WritePlan:
    return WritePlan(upserts=list(chunks), chunk_counts={c.doc_id: c.chunk_count for c in chunks})


@pytest.fixture
async def graph(base_settings: Settings, run_id: str, stack: object) -> AsyncIterator[Any]:
    settings = replace(base_settings.neo4j, graph=f"{run_id}-live")
    store = Neo4jGraphStore(settings)
    await store.ensure_schema()
    yield store
    await store.driver.execute_query(
        "MATCH (n) WHERE n.gen STARTS WITH $g OR n.name = $g DETACH DELETE n", g=settings.graph
    )
    await store.close()


async def edges(store: Neo4jGraphStore) -> list[tuple[str, str, str]]:
    records = await store.query(
        "MATCH (a)-[r]->(b) WHERE a.gen = $gen "
        "RETURN type(r) AS type, coalesce(a.chunk_id, a.doc_id, a.key) AS a, "
        "coalesce(b.chunk_id, b.doc_id, b.key) AS b ORDER BY type, a, b",
        gen=f"{store.settings.graph}:0",
    )
    return [(r["type"], r["a"], r["b"]) for r in records]


async def nodes(store: Neo4jGraphStore) -> list[Any]:
    records = await store.query(
        "MATCH (n) WHERE n.gen = $gen RETURN labels(n) AS l, properties(n) AS p",
        gen=f"{store.settings.graph}:0",
    )
    return sorted((repr(r["l"]), repr(sorted(r["p"].items()))) for r in records)


async def test_a_replayed_batch_changes_nothing(graph: Neo4jGraphStore) -> None:
    batch = plan(
        chunk("a", 0, 2, "Ada Lovelace wrote notes.", links=["b"]),
        chunk("a", 1, 2, "Charles Babbage built the Analytical Engine.", links=["b"]),
        chunk("b", 0, 1, "Ada Lovelace met Charles Babbage."),
    )
    await graph.write(batch)
    first = await nodes(graph), await edges(graph)
    await graph.write(batch)
    assert (await nodes(graph), await edges(graph)) == first
    assert ("NEXT", "a#0", "a#1") in first[1]
    assert ("LINKS_TO", "a", "b") in first[1]
    assert ("MENTIONS", "b#0", "charles babbage") in first[1]
    assert len([e for e in first[1] if e[0] == "NEXT"]) == 1


async def test_a_new_version_replaces_the_edges_of_the_last(graph: Neo4jGraphStore) -> None:
    await graph.write(
        plan(
            chunk("a", 0, 3, "Ada Lovelace wrote notes.", links=["b"]),
            chunk("a", 1, 3, "Charles Babbage built it.", links=["b"]),
            chunk("a", 2, 3, "The Royal Society heard.", links=["b"]),
        )
    )
    await graph.write(
        plan(
            chunk("a", 0, 2, "Mary Somerville wrote.", version=2, links=["c"]),
            chunk("a", 1, 2, "Mary Somerville again.", version=2, links=["c"]),
        )
    )
    found = await edges(graph)
    assert [e for e in found if e[0] == "NEXT"] == [("NEXT", "a#0", "a#1")]
    assert [e for e in found if e[0] == "LINKS_TO"] == [("LINKS_TO", "a", "c")]
    assert {e[2] for e in found if e[0] == "MENTIONS"} == {"mary somerville"}
    # Entities stay (other chunks may mention them); only the edges went.
    keys = await graph.query(
        "MATCH (e:Entity) WHERE e.gen = $g RETURN e.key AS k", g=f"{graph.settings.graph}:0"
    )
    assert "ada lovelace" in {r["k"] for r in keys}


async def test_the_next_chain_is_whole_whatever_the_order_of_arrival(
    graph: Neo4jGraphStore,
) -> None:
    texts = ["one.", "two.", "three.", "four.", "five."]
    parts = [chunk("d", i, 5, t) for i, t in enumerate(texts)]
    await graph.write(plan(parts[3], parts[1]))
    await graph.write(plan(parts[4], parts[0], parts[2]))
    await graph.write(plan(parts[2], parts[3]))  # a replay in the middle of the chain
    chain = [(a, b) for t, a, b in await edges(graph) if t == "NEXT"]
    assert chain == [("d#0", "d#1"), ("d#1", "d#2"), ("d#2", "d#3"), ("d#3", "d#4")]
    neighbours = await graph.neighbours(["d#2"], per_edge=5, edges=["next"])
    assert sorted(n.hit.chunk_id for n in neighbours) == ["d#1", "d#3"]


async def test_neighbours_through_a_shared_entity_read_the_live_paths_edges(
    graph: Neo4jGraphStore,
) -> None:
    await graph.write(plan(chunk("x", 0, 1, "Grace Hopper wrote COBOL.")))
    await graph.write(plan(chunk("y", 0, 1, "COBOL ran on the UNIVAC.")))
    found = await graph.neighbours(["x#0"], per_edge=5, edges=["mentions"])
    assert [(n.hit.chunk_id, n.edge) for n in found] == [("y#0", "mentions")]


async def test_a_rare_shared_entity_counts_more_than_a_common_one(
    graph: Neo4jGraphStore,
) -> None:
    """As IDF weighs terms: sharing an entity few chunks mention relates two
    chunks more than sharing one that many mention."""
    await graph.write(plan(chunk("seed", 0, 1, "Grace Hopper wrote COBOL.")))
    await graph.write(plan(chunk("rare", 0, 1, "Grace Hopper lectured at Yale.")))
    for n in range(4):
        await graph.write(plan(chunk(f"common{n}", 0, 1, f"COBOL still runs payroll job {n}.")))
    found = await graph.neighbours(["seed#0"], per_edge=1, edges=["mentions"])
    assert [n.hit.chunk_id for n in found] == ["rare#0"]


async def test_an_entity_too_common_to_relate_two_chunks_is_not_followed(
    graph: Neo4jGraphStore,
) -> None:
    """The step reads a bounded number of edges per seed, whatever the most
    mentioned entity's degree: one mentioned by more than the cap is passed over."""
    common = [
        chunk(f"c{n}", 0, 1, f"COBOL batch {n} finished.") for n in range(MENTIONS_MAX_DEGREE + 1)
    ]
    await graph.write(plan(*common))
    await graph.write(plan(chunk("seed", 0, 1, "Grace Hopper wrote COBOL.")))
    await graph.write(plan(chunk("rare", 0, 1, "Grace Hopper lectured at Yale.")))
    found = await graph.neighbours(["seed#0"], per_edge=5, edges=["mentions"])
    assert [n.hit.chunk_id for n in found] == ["rare#0"]
    over = await graph.neighbours(["c0#0"], per_edge=200, edges=["mentions"])
    assert over == [], "COBOL is over the cap for every chunk that mentions it"
