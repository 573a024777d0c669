"""The query path is warmed before the edge reports ready: one query
embedding, a dense and a sparse search, one neighbours query."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from starlette.testclient import TestClient

from api.app import create_api
from api.health import Health
from api.search import QueryLimits, SearchService
from api.warmup import PROBE_CHUNK_ID, Warmup
from core.types import Hit, StoreUnavailable
from tests.fakes import FakeEmbedder, FakeStore
from tests.profiles import FixedProfile


class CountingStore(FakeStore):
    """Counts each kind of call; the first `down_calls` calls find it down."""

    def __init__(self, down_calls: int = 0) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.down_calls = down_calls

    def _called(self, kind: str) -> None:
        self.calls.append(kind)
        if self.down_calls > 0:
            self.down_calls -= 1
            raise StoreUnavailable("fake", "not up yet")

    async def search(self, vector: Sequence[float], limit: int, where: Any = None) -> list[Any]:
        self._called("dense")
        return []

    async def search_lexical(self, text: str, limit: int, where: Any = None) -> list[Any]:
        self._called("lexical")
        return []

    async def neighbours(
        self, chunk_ids: Sequence[str], per_edge: int, edges: Sequence[str] = ("next",)
    ) -> list[Any]:
        self._called(f"graph:{','.join(chunk_ids)}:{','.join(edges)}")
        return []


async def test_every_cold_path_runs_once_and_then_the_check_passes() -> None:
    embedder, vectors, graph = FakeEmbedder(), CountingStore(), CountingStore()
    warmup = Warmup(FixedProfile(embedder=embedder), vectors, graph)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="warming up"):
        await warmup.check()
    await warmup.run()
    await warmup.check()
    assert len(embedder.calls) == 1
    assert vectors.calls == ["dense", "lexical"]
    assert graph.calls == [f"graph:{PROBE_CHUNK_ID}:next,links_to,mentions"]
    assert set(warmup.timings_ms) == {"embed", "dense", "lexical", "graph"}


async def test_a_store_not_up_yet_is_waited_for() -> None:
    vectors, graph = CountingStore(down_calls=2), CountingStore()
    warmup = Warmup(FixedProfile(), vectors, graph, retry_s=0.001)  # type: ignore[arg-type]
    await warmup.run()
    assert vectors.calls == ["dense", "dense", "dense", "lexical"]
    assert warmup.done and "dense" in warmup.timings_ms


async def test_a_store_that_stays_down_leaves_its_path_cold_but_the_process_ready() -> None:
    vectors, graph = CountingStore(), CountingStore(down_calls=10**6)
    warmup = Warmup(FixedProfile(), vectors, graph, deadline_s=0.05, retry_s=0.01)  # type: ignore[arg-type]
    await warmup.run()
    await warmup.check()
    assert "graph" not in warmup.timings_ms and "lexical" in warmup.timings_ms


async def test_a_bug_is_not_taken_for_a_store_that_is_down() -> None:
    graph = CountingStore()
    graph.neighbours = None  # type: ignore[assignment,method-assign]
    warmup = Warmup(FixedProfile(), CountingStore(), graph)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await warmup.run()
    assert not warmup.done


def test_ready_waits_for_the_warmup() -> None:
    vectors, graph = CountingStore(), CountingStore()
    warmup = Warmup(FixedProfile(), vectors, graph)  # type: ignore[arg-type]
    search = SearchService(FixedProfile(), vectors, graph, QueryLimits())  # type: ignore[arg-type]
    client = TestClient(create_api(search, Health({"warm": warmup.check})))
    response = client.get("/health/ready")
    assert response.status_code == 503 and response.json()["down"] == ["warm"]
    asyncio.run(warmup.run())
    assert client.get("/health/ready").status_code == 200


async def test_a_whole_query_runs_after_the_probes_and_a_degraded_one_is_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hit = Hit("c1", "d1", 0, "text", 0.9, "cid", "dense")
    vectors = FakeStore(hits=[hit], lexical_hits=[hit])
    graph = FakeStore(fail=StoreUnavailable("fake", "the first graph step times out"))
    search = SearchService(FixedProfile(), vectors, graph, QueryLimits())  # type: ignore[arg-type]
    warmup = Warmup(FixedProfile(), CountingStore(), CountingStore(), search)  # type: ignore[arg-type]
    waits: list[float] = []

    async def recover(seconds: float) -> None:
        waits.append(seconds)
        graph.fail = None  # the store answers from the second try on

    monkeypatch.setattr("api.warmup.asyncio.sleep", recover)
    await warmup.run()
    assert warmup.done and "query" in warmup.timings_ms
    assert len(waits) == 1  # one degraded query, then a clean one
    assert graph.filters == [("next", "links_to", "mentions")]  # the graph step ran with a seed


async def test_an_empty_index_is_warmed_again_once_its_first_documents_arrive() -> None:
    vectors, graph = FakeStore(), FakeStore()
    search = SearchService(FixedProfile(), vectors, graph, QueryLimits())  # type: ignore[arg-type]
    warmup = Warmup(FixedProfile(), CountingStore(), CountingStore(), search, reseed_s=0.001)  # type: ignore[arg-type]
    await warmup.run()
    assert warmup.done and not warmup.seeded and warmup.reseeding is not None
    assert graph.filters == []  # no hit: the graph step had no seed
    hit = Hit("c1", "d1", 0, "text", 0.9, "cid", "dense")
    vectors.hits, vectors.lexical_hits = [hit], [hit]  # the first document is indexed
    await asyncio.wait_for(warmup.reseeding, 5)
    assert warmup.seeded and graph.filters == [("next", "links_to", "mentions")]


async def test_a_seeded_index_needs_no_second_warm_up() -> None:
    hit = Hit("c1", "d1", 0, "text", 0.9, "cid", "dense")
    vectors, graph = FakeStore(hits=[hit]), FakeStore()
    search = SearchService(FixedProfile(), vectors, graph, QueryLimits())  # type: ignore[arg-type]
    warmup = Warmup(FixedProfile(), CountingStore(), CountingStore(), search)  # type: ignore[arg-type]
    await warmup.run()
    assert warmup.seeded and warmup.reseeding is None
