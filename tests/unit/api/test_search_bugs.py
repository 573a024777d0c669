"""A bug in a real store adapter's reply handling, through the real query plan
and edge: an embedded Qdrant Edge store (a tmp folder, no server) whose
conversion of points into `Hit`s (`sinks/qdrant/server.py` `_hit`, which
`edge.py` uses) raises TypeError. The adapter does not map it (it is no store
failure), so the answer ends with `error` or a 500, never `degraded`; an
engine error the adapter does map still degrades it."""

from __future__ import annotations

import asyncio
import errno
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from api.app import create_api
from api.health import Health
from api.search import FAILED_MESSAGE, Query, QueryFailed, QueryLimits, SearchService
from core.settings import QdrantSettings
from core.types import IndexedChunk, WritePlan
from sinks.qdrant.edge import EdgeVectorStore
from tests.fakes import FakeStore
from tests.profiles import FixedProfile

SSE = {"Accept": "text/event-stream"}


def chunk(doc_id: str, text: str) -> IndexedChunk:
    # The fake embedder's vector of a query is [len(text), 1, 0]: near every chunk's.
    chunk_id = f"00000000-0000-5000-8000-{abs(hash(doc_id)) % 10**12:012d}"
    return IndexedChunk(chunk_id, doc_id, 1, 0, 1, "T", text, [1.0, 1.0, 0.0], "corr")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EdgeVectorStore]:
    """A Qdrant Edge shard holding two chunks. Made and closed on loops of its
    own: the store's calls run on its own thread, whichever loop awaits them."""
    store = EdgeVectorStore(QdrantSettings(path=tmp_path / "q", engine="edge"), dimension=3)
    chunks = [chunk("x", "kettles whistle"), chunk("y", "kettles hum")]
    asyncio.run(store.ensure_schema())
    asyncio.run(store.write(WritePlan(upserts=chunks, chunk_counts={"x": 1, "y": 1})))
    yield store
    asyncio.run(store.close())


def misread_points(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(point: Any, retriever: str) -> Any:
        raise TypeError("a bug of ours reading a point")

    monkeypatch.setattr("sinks.qdrant.edge._hit", broken)


def search_over(store: EdgeVectorStore) -> SearchService:
    return SearchService(FixedProfile(), store, FakeStore(), QueryLimits())  # type: ignore[arg-type]


def edge(store: EdgeVectorStore) -> TestClient:
    return TestClient(create_api(search_over(store), Health({})))


def events_of(body: str) -> list[tuple[str, dict[str, Any]]]:
    kinds = [line[7:] for line in body.splitlines() if line.startswith("event: ")]
    data = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]
    return list(zip(kinds, data, strict=True))


def kinds_of(body: str) -> list[str]:
    return [kind for kind, _ in events_of(body)]


def test_the_store_answers_before_the_bug_is_injected(store: EdgeVectorStore) -> None:
    with edge(store).stream("GET", "/query", params={"q": "kettles"}, headers=SSE) as answer:
        assert kinds_of("".join(answer.iter_text())) == ["meta", "hit", "hit", "done"]


def test_a_bug_converting_points_ends_the_stream_with_error_not_degraded(
    store: EdgeVectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    misread_points(monkeypatch)
    headers = {**SSE, "X-Correlation-ID": "edge-bug"}
    with edge(store).stream("GET", "/query", params={"q": "kettles"}, headers=headers) as answer:
        body = "".join(answer.iter_text())
    assert events_of(body)[1:] == [
        ("error", {"message": FAILED_MESSAGE, "correlation_id": "edge-bug"})
    ]


def test_a_bug_converting_points_is_a_500_for_a_json_query(
    store: EdgeVectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    misread_points(monkeypatch)
    answer = edge(store).get("/query", params={"q": "kettles", "mode": "lexical"})
    assert answer.status_code == 500
    assert answer.json()["correlation_id"] == answer.headers["x-correlation-id"]
    assert "degraded" not in answer.json()


async def test_the_plan_names_the_stage_and_keeps_the_bug_as_its_cause(
    store: EdgeVectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    misread_points(monkeypatch)
    with pytest.raises(QueryFailed) as raised:
        [event async for event in search_over(store).run(Query("kettles", mode="dense"))]
    assert raised.value.stage == "dense"
    assert isinstance(raised.value.__cause__, TypeError)


def test_an_engine_error_the_adapter_maps_still_degrades(
    store: EdgeVectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_disk(*_: Any) -> Any:  # Qdrant Edge's own error type: a bare Exception
        raise Exception(f"Service internal error: I/O error (os error {errno.EIO})")

    monkeypatch.setattr(EdgeVectorStore, "_shard", failing_disk)
    answer = edge(store).get("/query", params={"q": "kettles"})
    assert answer.status_code == 200
    assert answer.json()["degraded"] == [{"store": "qdrant", "reason": "unavailable"}]
