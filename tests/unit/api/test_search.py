import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from prometheus_client import REGISTRY

from api.search import (
    Query,
    QueryFailed,
    QueryLimits,
    SearchEvent,
    SearchService,
    StoreTimeout,
    hit_payload,
    store_failure,
)
from core.types import (
    Hit,
    SearchFilter,
    StoreError,
    StoreNeedsOperator,
    StoreRejected,
    StoreUnavailable,
)
from tests.fakes import FakeEmbedder, FakeStore, MisreadStore, hit
from tests.profiles import FixedProfile


async def run(service: SearchService, query: Query) -> list[SearchEvent]:
    return [event async for event in service.run(query)]


def service(vectors: FakeStore, graph: FakeStore, timeout: float = 1.0) -> SearchService:
    limits = QueryLimits(store_timeout_s=timeout)
    return SearchService(FixedProfile(), vectors, graph, limits)  # type: ignore[arg-type]


async def test_fused_hits_come_first_then_graph_neighbours_then_done() -> None:
    vectors = FakeStore(hits=[hit("a", index=0), hit("b", doc_id="other", score=0.5)])
    graph = FakeStore(hits=[hit("a1", index=1, retriever="graph")])
    events = await run(service(vectors, graph), Query("q", k=2, mode="dense"))
    assert [e.kind for e in events] == ["hit", "hit", "hit", "done"]
    assert [e.data["chunk_id"] for e in events[:3]] == ["a", "b", "a1"]
    assert [e.data["rank"] for e in events[:3]] == [1, 2, 3]
    assert events[0].data["retrievers"] == {"dense": 1}
    assert events[2].data["via"] == "a" and events[2].data["retrievers"] == {"graph": 1}
    assert events[2].data["score"] < events[1].data["score"]
    assert events[-1].data["hits"] == 3
    timings = events[-1].data["timings"]
    assert {"embed_ms", "dense_ms", "fusion_ms", "graph_ms", "total_ms"} <= set(timings)


async def test_hybrid_fuses_both_retrievers_and_says_who_found_what() -> None:
    vectors = FakeStore(
        hits=[hit("both", score=0.9), hit("dense-only", score=0.8)],
        lexical_hits=[hit("lexical-only", score=12.0), hit("both", score=7.0)],
    )
    events = await run(service(vectors, FakeStore()), Query("q", k=3, expand=0))
    hits = [e.data for e in events if e.kind == "hit"]
    assert hits[0]["chunk_id"] == "both" and hits[0]["retrievers"] == {"dense": 1, "lexical": 2}
    assert {h["chunk_id"] for h in hits} == {"both", "dense-only", "lexical-only"}
    assert "lexical_ms" in events[-1].data["timings"]


async def test_lexical_mode_needs_no_embedding() -> None:
    embedder = FakeEmbedder()
    vectors = FakeStore(hits=[hit("d")], lexical_hits=[hit("l")])
    search = SearchService(FixedProfile(embedder=embedder), vectors, FakeStore(), QueryLimits())  # type: ignore[arg-type]
    events = await run(search, Query("q", mode="lexical", expand=0))
    assert [e.data["chunk_id"] for e in events if e.kind == "hit"] == ["l"]
    assert embedder.calls == []


async def test_filters_reach_every_retriever() -> None:
    vectors = FakeStore(hits=[hit("a")], lexical_hits=[hit("a")])
    where = SearchFilter(metadata=(("lang", "en"),), doc_ids=("a",))
    await run(service(vectors, FakeStore()), Query("q", where=where, expand=0))
    assert vectors.filters == [where, where]


async def test_query_vectors_are_cached() -> None:
    embedder = FakeEmbedder()
    search = SearchService(FixedProfile(embedder=embedder), FakeStore(), FakeStore(), QueryLimits())  # type: ignore[arg-type]
    done = []
    for _ in range(3):
        events = await run(search, Query("same question", mode="dense"))
        done.append(events[-1].data["timings"])
    assert embedder.calls == [["same question"]]
    assert done[1]["embed_ms"] == done[2]["embed_ms"] == 0.0, "a cached vector waits for nothing"


async def test_hit_payload_carries_every_field_of_the_hit() -> None:
    found = hit("a", doc_id="d", index=4, score=0.5)
    payload = hit_payload(2, found, {"dense": 1})
    assert payload == {
        "rank": 2,
        "chunk_id": "a",
        "doc_id": "d",
        "chunk_index": 4,
        "text": found.text,
        "score": 0.5,
        "correlation_id": found.correlation_id,
        "retriever": found.retriever,
        "title": found.title,
        "retrievers": {"dense": 1},
    }
    assert set(payload) - {"rank", "chunk_index", "retrievers"} == set(Hit.__dataclass_fields__) - {
        "index"
    }


async def test_graph_hits_already_found_are_not_repeated() -> None:
    vectors = FakeStore(hits=[hit("a"), hit("b", index=1)])
    graph = FakeStore(hits=[hit("b", index=1, retriever="graph")])
    events = await run(service(vectors, graph), Query("q", k=2, mode="dense"))
    assert [e.data.get("chunk_id") for e in events if e.kind == "hit"] == ["a", "b"]


async def test_a_failing_graph_store_degrades_but_hits_still_arrive() -> None:
    vectors = FakeStore(hits=[hit("a")])
    graph = FakeStore(fail=StoreUnavailable("neo4j", "gone"))
    events = await run(service(vectors, graph), Query("q", mode="dense"))
    assert [e.kind for e in events] == ["hit", "degraded", "done"]
    assert events[1].data == {"store": "neo4j", "reason": "unavailable"}


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


CONTRACT = [
    StoreUnavailable("qdrant", "down"),
    StoreNeedsOperator("qdrant", "disk full", "disk_full"),
    StoreRejected("qdrant", "bad filter"),
]


@pytest.mark.parametrize("error", CONTRACT, ids=lambda e: type(e).__name__)
async def test_every_error_of_the_store_contract_still_degrades(error: StoreError) -> None:
    before = counted("docstream_query_degraded_total", store="qdrant")
    events = await run(service(FakeStore(fail=error), FakeStore()), Query("q"))
    assert [e.kind for e in events] == ["degraded", "done"]
    assert events[0].data == {"store": "qdrant", "reason": "unavailable"}
    assert counted("docstream_query_degraded_total", store="qdrant") == before + 1


@pytest.mark.parametrize(("mode", "stage"), [("dense", "dense"), ("lexical", "lexical")])
async def test_a_bug_reading_a_vector_stores_reply_fails_the_query_not_degrades_it(
    mode: str, stage: str
) -> None:
    vectors = MisreadStore(hits=[hit("a")], lexical_hits=[hit("a", retriever="lexical")])
    degraded = counted("docstream_query_degraded_total", store="qdrant")
    with pytest.raises(QueryFailed) as raised:
        await run(service(vectors, FakeStore()), Query("q", mode=mode))
    assert raised.value.stage == stage
    assert isinstance(raised.value.__cause__, TypeError)
    assert counted("docstream_query_degraded_total", store="qdrant") == degraded


async def test_a_bug_beside_a_store_outage_still_fails_the_query_and_degrades_nothing() -> None:
    class LexicalDown(MisreadStore):  # dense is misread, lexical is down
        async def search_lexical(self, text: str, limit: int, where: Any = None) -> list[Hit]:
            raise StoreUnavailable("qdrant", "down")

    vectors = LexicalDown(hits=[hit("a")])
    degraded = counted("docstream_query_degraded_total", store="qdrant")
    with pytest.raises(QueryFailed) as raised:
        await run(service(vectors, FakeStore()), Query("q"))
    assert raised.value.stage == "dense"
    assert counted("docstream_query_degraded_total", store="qdrant") == degraded


async def test_a_bug_reading_the_graphs_reply_fails_the_query_after_the_fused_hits() -> None:
    search = service(FakeStore(hits=[hit("a")]), MisreadStore(hits=[hit("b", retriever="graph")]))
    bursts = search.bursts(Query("q", mode="dense"))
    assert [e.kind for e in await anext(bursts)] == ["hit"]
    with pytest.raises(QueryFailed) as raised:
        await anext(bursts)
    assert raised.value.stage == "graph" and isinstance(raised.value.__cause__, TypeError)


async def test_a_bug_in_the_embedder_fails_the_query_at_the_embed_stage() -> None:
    class Broken(FakeEmbedder):
        def embed(self, texts: Sequence[str]) -> list[list[float]]:
            raise TypeError("a bug of ours")

    search = SearchService(FixedProfile(embedder=Broken()), FakeStore(), FakeStore(), QueryLimits())  # type: ignore[arg-type]
    with pytest.raises(QueryFailed) as raised:
        await run(search, Query("q", mode="dense"))
    assert raised.value.stage == "embed"


def test_only_the_store_contract_and_timeouts_are_store_failures() -> None:
    for error in [*CONTRACT, StoreTimeout("dense took longer than 2s")]:
        assert store_failure(error, "dense") is error
    for bug in (TypeError("x"), KeyError("x"), ConnectionError("not mapped by an adapter")):
        with pytest.raises(QueryFailed) as raised:
            store_failure(bug, "lexical")
        assert raised.value.stage == "lexical" and raised.value.__cause__ is bug
    named = QueryFailed("embed")
    with pytest.raises(QueryFailed) as kept:
        store_failure(named, "dense")
    assert kept.value is named
    with pytest.raises(asyncio.CancelledError):
        store_failure(asyncio.CancelledError(), "dense")


class SlowStore(FakeStore):
    async def search(self, vector: Sequence[float], limit: int, where: Any = None) -> list[Hit]:
        await asyncio.sleep(5)
        return []

    async def search_lexical(self, text: str, limit: int, where: Any = None) -> list[Hit]:
        await asyncio.sleep(5)
        return []


async def test_a_slow_vector_store_times_out_once_instead_of_hanging() -> None:
    events = await run(service(SlowStore(), FakeStore(), timeout=0.05), Query("q"))
    assert [e.kind for e in events] == ["degraded", "done"]
    assert events[0].data == {"store": "qdrant", "reason": "timeout"}


async def test_a_filtered_query_follows_only_next_edges() -> None:
    vectors, graph = FakeStore(hits=[hit("a")]), FakeStore()
    await run(service(vectors, graph), Query("q", mode="dense", where=SearchFilter(doc_ids=("d",))))
    await run(service(vectors, graph), Query("q", mode="dense"))
    assert graph.filters == [("next",), ("next", "links_to", "mentions")]


class ModelEmbedder(FakeEmbedder):
    """Vectors that say which model made them."""

    def __init__(self, model_name: str, marker: float) -> None:
        super().__init__()
        self.model_name = model_name  # type: ignore[misc]
        self.marker = marker

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [[self.marker, *vector[1:]] for vector in super().embed(texts)]


class VectorsSeen(FakeStore):
    def __init__(self) -> None:
        super().__init__()
        self.vectors: list[list[float]] = []

    async def search(self, vector: Sequence[float], limit: int, where: Any = None) -> list[Hit]:
        self.vectors.append(list(vector))
        return await super().search(vector, limit, where)


async def test_after_a_switch_queries_embed_with_the_new_model_not_the_cached_old_vectors() -> None:
    old, new = ModelEmbedder("old-model", 1.0), ModelEmbedder("new-model", 2.0)
    profile, vectors = FixedProfile(embedder=old), VectorsSeen()
    search = SearchService(profile, vectors, FakeStore(), QueryLimits())  # type: ignore[arg-type]
    await run(search, Query("same question", mode="dense", expand=0))
    profile.embedder = new  # what a replay's switch does to the holder
    await run(search, Query("same question", mode="dense", expand=0))
    await run(search, Query("same question", mode="dense", expand=0))
    assert old.calls == [["same question"]]
    assert new.calls == [["same question"]], "embedded once with the new model, then cached"
    assert [v[0] for v in vectors.vectors] == [1.0, 2.0, 2.0]


class SwitchingEmbedder(ModelEmbedder):
    """An old model during whose call a replay switches the profile."""

    def __init__(self, profile: FixedProfile, to: ModelEmbedder) -> None:
        super().__init__("old-model", 1.0)
        self.profile, self.to = profile, to

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.profile.embedder = self.to
        return super().embed(texts)


async def test_a_vector_made_while_the_model_was_switched_is_not_served_for_the_new_one() -> None:
    profile, new = FixedProfile(), ModelEmbedder("new-model", 2.0)
    profile.embedder = SwitchingEmbedder(profile, new)
    vectors = VectorsSeen()
    search = SearchService(profile, vectors, FakeStore(), QueryLimits())  # type: ignore[arg-type]
    await run(search, Query("same question", mode="dense", expand=0))
    await run(search, Query("same question", mode="dense", expand=0))
    assert new.calls == [["same question"]]
    assert [v[0] for v in vectors.vectors] == [1.0, 2.0]
