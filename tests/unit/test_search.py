import asyncio
from collections.abc import Sequence

from api.search import Query, QueryLimits, SearchEvent, SearchService
from core.types import Hit
from tests.fakes import FakeEmbedder, FakeStore, hit


async def run(service: SearchService, query: Query) -> list[SearchEvent]:
    return [event async for event in service.run(query)]


def service(vectors: FakeStore, graph: FakeStore, timeout: float = 1.0) -> SearchService:
    limits = QueryLimits(store_timeout_s=timeout)
    return SearchService(FakeEmbedder(), vectors, graph, limits)  # type: ignore[arg-type]


async def test_dense_hits_come_first_then_graph_neighbours_then_done() -> None:
    vectors = FakeStore(hits=[hit("a", index=0), hit("b", doc_id="other", score=0.5)])
    graph = FakeStore(hits=[hit("a1", index=1, retriever="graph")])
    events = await run(service(vectors, graph), Query("q", k=2))
    assert [e.kind for e in events] == ["hit", "hit", "hit", "done"]
    assert [e.data["chunk_id"] for e in events[:3]] == ["a", "b", "a1"]
    assert [e.data["rank"] for e in events[:3]] == [1, 2, 3]
    assert events[2].data["via"] == "a" and events[2].data["retriever"] == "graph"
    assert events[2].data["score"] < events[1].data["score"]
    assert events[-1].data["hits"] == 3
    assert {"embed_ms", "dense_ms", "graph_ms", "total_ms"} <= set(events[-1].data["timings"])


async def test_graph_hits_already_found_by_dense_are_not_repeated() -> None:
    vectors = FakeStore(hits=[hit("a"), hit("b", index=1)])
    graph = FakeStore(hits=[hit("b", index=1, retriever="graph")])
    events = await run(service(vectors, graph), Query("q", k=2))
    assert [e.data.get("chunk_id") for e in events if e.kind == "hit"] == ["a", "b"]


async def test_a_failing_graph_store_degrades_but_dense_hits_still_arrive() -> None:
    vectors = FakeStore(hits=[hit("a")])
    graph = FakeStore(fail=ConnectionError("neo4j gone"))
    events = await run(service(vectors, graph), Query("q"))
    assert [e.kind for e in events] == ["hit", "degraded", "done"]
    assert events[1].data == {"store": "neo4j", "reason": "unavailable"}


class SlowStore(FakeStore):
    async def search(self, vector: Sequence[float], limit: int) -> list[Hit]:
        await asyncio.sleep(5)
        return []


async def test_a_slow_vector_store_times_out_instead_of_hanging() -> None:
    events = await run(service(SlowStore(), FakeStore(), timeout=0.05), Query("q"))
    assert [e.kind for e in events] == ["degraded", "done"]
    assert events[0].data == {"store": "qdrant", "reason": "timeout"}
