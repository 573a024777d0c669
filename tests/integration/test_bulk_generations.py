"""The bulk path against the real stores (Neo4j; Qdrant Edge and a Qdrant
server): a generation filled in bulk holds
exactly what the live (idempotent) path makes from the same events, node for
node, edge for edge and point for point, whether the fill runs fresh, straddles
batches, meets later versions and deletes, or resumes a generation an
interrupted rebuild left half full."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import qdrant_edge as edge

from core.settings import Settings
from ops.jobs.bulk import BulkSink, bulk_for, reduce_events
from schemas.codec import codec_for
from schemas.fast import FastDecoder
from sinks.neo4j.generations import GraphGenerations
from sinks.neo4j.store import Neo4jGraphStore
from sinks.qdrant.edge import EdgeVectorStore
from sinks.qdrant.generations import QdrantGenerations
from sinks.qdrant.server import QdrantVectorStore
from tests.fakes import FakeMessage
from tests.integration.helpers import server_store_settings

pytestmark = pytest.mark.integration
CODEC = codec_for("EmbeddedChunk")
TEXTS = [
    "Ada Lovelace wrote notes on the Analytical Engine.",
    "Charles Babbage designed it in London.",
    "The Royal Society heard of it.",
    "Mary Somerville introduced Ada Lovelace to Charles Babbage.",
]


def event(doc: str, version: int, index: int, count: int, **more: Any) -> FakeMessage:
    record = {
        "chunk_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{doc}-v{version}-{index}")),
        "doc_id": doc,
        "version": version,
        "op": "UPSERT",
        "index": index,
        "chunk_count": count,
        "title": f"Title of {doc}",
        "text": TEXTS[(index + len(doc)) % len(TEXTS)],
        "start": 0,
        "end": 1,
        "source": "bulk-test",
        "links": [],
        "occurred_at": 1_700_000_000_000,
        "model": "m",
        "vector": [float(index + 1), float(version), 0.5],
    } | more
    return FakeMessage(CODEC.encode(record))


def deleted(doc: str, version: int) -> FakeMessage:
    return event(doc, version, -1, 0, op="DELETE", chunk_id="", text="", vector=[])


def document(doc: str, version: int, count: int, links: Sequence[str] = ()) -> list[FakeMessage]:
    return [event(doc, version, i, count, links=list(links)) for i in range(count)]


# Batches as a rebuild reads them: a document straddling two, a later shorter
# version, a delete, links to documents that come later or never.
BATCHES = [
    [*document("a", 1, 3, ["b", "ghost"]), *document("b", 1, 2, ["a"]), *document("c", 1, 2)[:1]],
    [*document("c", 1, 2)[1:], *document("d", 1, 2, ["c"]), *document("a", 2, 2, ["c"])],
    [deleted("d", 2), *document("e", 1, 4, ["d", "a"]), *document("b", 1, 2, ["a"])],
]


@pytest.fixture
async def graph(base_settings: Settings, run_id: str, stack: object) -> AsyncIterator[Any]:
    settings = replace(base_settings.neo4j, graph=f"{run_id}-bulk")
    store = Neo4jGraphStore(settings)
    await store.ensure_schema()
    yield store
    await store.driver.execute_query(
        "MATCH (n) WHERE n.gen STARTS WITH $g OR n.name = $g DETACH DELETE n", g=settings.graph
    )
    await store.close()


Vectors = EdgeVectorStore | QdrantVectorStore


@pytest.fixture(params=["edge", "server"])
async def vectors(
    request: pytest.FixtureRequest, base_settings: Settings, tmp_path: Path
) -> AsyncIterator[Vectors]:
    """Qdrant Edge in a fresh folder, or an alias of the test's own on the
    session's Qdrant server (tests/integration/conftest.py)."""
    store: Vectors
    if request.param == "edge":
        store = EdgeVectorStore(replace(base_settings.qdrant, path=tmp_path, engine="edge"), 3)
    else:
        url = request.getfixturevalue("qdrant_server")
        store = QdrantVectorStore(server_store_settings(url), dimension=3)
    await store.ensure_schema()
    yield store
    await store.close()


async def live_fill(store: Any, batches: Sequence[Sequence[FakeMessage]]) -> None:
    decoder = FastDecoder(CODEC)
    sink = BulkSink("live", store, bulk_for(store), decoder, all_written=True)
    for batch in batches:
        events, _ = sink.decode(batch)
        await store.write(reduce_events(events))  # the live sink's write, batch by batch


async def bulk_fill(store: Any, batches: Sequence[Sequence[FakeMessage]], **kw: Any) -> BulkSink:
    sink = BulkSink("bulk", store, bulk_for(store), FastDecoder(CODEC), **kw)
    for batch in batches:
        await sink.handle(batch)
    return sink


async def graph_of(store: Neo4jGraphStore, gen: str) -> tuple[list[Any], list[Any]]:
    nodes = await store.query(
        "MATCH (n) WHERE n.gen = $gen RETURN labels(n) AS labels, properties(n) AS props",
        gen=gen,
    )
    edges = await store.query(
        "MATCH (a)-[r]->(b) WHERE a.gen = $gen AND b.gen = $gen "
        "RETURN type(r) AS type, coalesce(a.chunk_id, a.doc_id, a.key) AS a, "
        "coalesce(b.chunk_id, b.doc_id, b.key) AS b ORDER BY type, a, b",
        gen=gen,
    )

    def node(record: Any) -> tuple[list[str], dict[str, Any]]:
        props = {k: v for k, v in record["props"].items() if k != "gen"}
        return record["labels"], props

    return sorted(map(node, nodes), key=repr), [tuple(r.values()) for r in edges]


async def test_a_bulk_filled_graph_equals_the_live_paths_node_for_node(
    graph: Neo4jGraphStore,
) -> None:
    gens = GraphGenerations(graph)
    live_gen = await gens.begin()
    await live_fill(graph.pinned(live_gen), BATCHES)
    await gens.activate(live_gen)
    bulk_gen = await gens.begin()
    sink = await bulk_fill(graph.pinned(bulk_gen), BATCHES)
    live, bulk = await graph_of(graph, live_gen), await graph_of(graph, bulk_gen)
    assert bulk == live
    nodes, edges = live
    assert {t for t, _, _ in edges} == {"HAS_CHUNK", "NEXT", "LINKS_TO", "MENTIONS"}
    # A link to a document that never came leaves a placeholder; the deleted
    # document another still links to stays as one too.
    placeholders = {p["doc_id"] for labels, p in nodes if p.get("placeholder")}
    assert placeholders == {"ghost", "d"}
    assert sink.written == {"a": 2, "b": 1, "c": 1, "e": 1}


async def test_a_resumed_bulk_fill_ends_with_the_same_graph(graph: Neo4jGraphStore) -> None:
    gens = GraphGenerations(graph)
    whole = await gens.begin()
    await bulk_fill(graph.pinned(whole), BATCHES)
    await gens.activate(whole)
    # Interrupted after its first batch (its offsets committed), then run again:
    # the second run finds data there and takes the idempotent path.
    resumed = await gens.begin()
    await bulk_fill(graph.pinned(resumed), BATCHES[:1])
    await bulk_fill(graph.pinned(resumed), BATCHES[1:], all_written=True)
    assert await graph_of(graph, resumed) == await graph_of(graph, whole)


def points_of(store: Vectors, gen: str) -> dict[str, Any]:
    if isinstance(store, QdrantVectorStore):
        records, _ = store.client.scroll(gen, limit=1000, with_payload=True, with_vectors=True)
    else:
        shard = store._open(gen)
        request = edge.ScrollRequest(limit=1000, with_payload=True, with_vector=True)
        records, _ = shard.scroll(request)
    return {str(r.id): (r.payload, comparable(r.vector)) for r in records}


def comparable(vectors: Any) -> dict[str, Any]:
    """The engine's vectors as plain values (its SparseVector has no equality)."""
    return {
        name: (tuple(v.indices), tuple(v.values)) if hasattr(v, "indices") else tuple(v)
        for name, v in vectors.items()
    }


async def test_a_bulk_filled_vector_generation_equals_the_live_paths_point_for_point(
    vectors: Vectors,
) -> None:
    gens = QdrantGenerations(vectors)
    live_gen = await gens.begin()
    await live_fill(vectors.pinned(live_gen), BATCHES)
    await gens.activate(live_gen)
    bulk_gen = await gens.begin()
    await bulk_fill(vectors.pinned(bulk_gen), BATCHES)
    live, bulk = points_of(vectors, live_gen), points_of(vectors, bulk_gen)
    assert bulk == live
    assert {p["doc_id"] for p, _ in live.values()} == {"a", "b", "c", "e"}


PROFILE = {"model": "m", "dimension": 3, "max_tokens": 64, "overlap_tokens": 8}


async def test_each_generation_keeps_its_profile_in_the_store(
    graph: Neo4jGraphStore, vectors: Vectors
) -> None:
    for gens in (GraphGenerations(graph), QdrantGenerations(vectors)):
        gen = await gens.begin()
        assert await gens.profile_of(gen) is None
        await gens.record_profile(gen, PROFILE)
        old = await gens.activate(gen)
        assert await gens.profile_of(gen) == PROFILE, gens  # read back as written
        await gens.record_profile(old, {**PROFILE, "model": "older"})
        await gens.drop(old)
        assert await gens.profile_of(old) is None, "a dropped generation's profile goes with it"
