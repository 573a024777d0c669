"""The SSE protocol as a raw client sees it on the wire: framing, ids, heartbeats
on a slow query, and a client that leaves cancelling the query.

A slow store is made real by freezing the local Neo4j process (SIGSTOP): its
sockets stay open but nothing answers, exactly like a store that hangs."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.integration.conftest import TEST_API_KEY, Pipeline
from tests.integration.helpers import eventually, metric
from tools.stack.local import LocalStack

pytestmark = pytest.mark.integration
HEARTBEAT_S = 0.2
STORE_TIMEOUT_S = 5.0  # generous: a cold graph query on two busy cores can take seconds
PIPELINE_ENV = {
    "DOCSTREAM_SSE_HEARTBEAT_S": str(HEARTBEAT_S),
    "DOCSTREAM_QUERY_STORE_TIMEOUT_S": str(STORE_TIMEOUT_S),
}


@dataclass
class Frame:
    """One thing the stream said: an event (kind, id, data) or a comment."""

    at: float
    kind: str  # an event name, or "comment"
    id: str = ""
    data: Any = None


def frames(lines: Iterator[str]) -> Iterator[Frame]:
    """A minimal SSE parser over raw lines, so the test sees what a proxy sees."""
    fields: dict[str, str] = {}
    for line in lines:
        if line.startswith(":"):
            yield Frame(time.monotonic(), "comment", data=line[1:].strip())
        elif line == "":
            if fields:
                data = json.loads(fields["data"]) if "data" in fields else None
                yield Frame(
                    time.monotonic(), fields.get("event", "message"), fields.get("id", ""), data
                )
            fields = {}
        else:
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value


@contextmanager
def stream(pipeline: Pipeline, **params: Any) -> Iterator[Iterator[Frame]]:
    headers = {"Accept": "text/event-stream"}
    with (
        httpx.Client(base_url=pipeline.base_url, timeout=30) as client,
        client.stream("GET", "/query", params=params, headers=headers) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield frames(response.iter_lines())


@contextmanager
def neo4j_frozen(stack: LocalStack) -> Iterator[None]:
    """Neo4j hangs (SIGSTOP) for the duration, and always wakes up after."""
    [pid] = [s.pid for s in stack.status() if s.name == "neo4j"]
    if pid is None:
        pytest.fail("Neo4j was not started by the local stack: no process to freeze")
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.fixture(scope="module")
def corpus(pipeline: Pipeline, run_id: str) -> list[str]:
    texts = [
        "Sapphire lanterns guide the night ferries across the fjord.",
        "The fjord ferries carry lanterns, bicycles and the morning post.",
    ]
    body = [{"doc_id": f"{run_id}-sse-{i}", "text": t} for i, t in enumerate(texts)]
    response = httpx.post(
        f"{pipeline.base_url}/documents", json=body, headers={"X-API-Key": TEST_API_KEY}
    )
    assert response.status_code == 202, response.text
    ids = [d["doc_id"] for d in body]
    for doc_id in ids:
        eventually(
            lambda d=doc_id: (
                httpx.get(f"{pipeline.base_url}/documents/{d}").json().get("status") == "indexed"
            ),
            f"{doc_id} indexed",
        )
    stream_all(pipeline, q="warm up the query plans", k=1)
    return ids


def test_events_carry_increasing_ids_from_meta_to_done(
    pipeline: Pipeline, corpus: list[str]
) -> None:
    with stream(pipeline, q="fjord ferries lanterns", k=2, expand=1) as source:
        events = [f for f in source if f.kind != "comment"]
    kinds = [e.kind for e in events]
    assert kinds[0] == "meta" and kinds[-1] == "done", kinds
    assert "hit" in kinds and "degraded" not in kinds
    # "<stream>:<seq>": one stream (a one-shot answer's, `q…`), counting from 0.
    streams = {e.id.rpartition(":")[0] for e in events}
    assert len(streams) == 1 and streams.pop().startswith("q")
    assert [int(e.id.rpartition(":")[2]) for e in events] == list(range(len(events)))
    assert events[0].data["plan"] == ["embed", "dense", "lexical", "fusion", "graph"]
    assert events[-1].data["hits"] == kinds.count("hit")
    assert {"embed_ms", "dense_ms", "lexical_ms", "graph_ms", "fusion_ms", "total_ms"} <= set(
        events[-1].data["timings"]
    )


def test_a_store_that_hangs_gets_heartbeats_then_a_degraded_event(
    pipeline: Pipeline, stack: LocalStack, corpus: list[str]
) -> None:
    with neo4j_frozen(stack), stream(pipeline, q="fjord ferries lanterns", k=2) as source:
        seen = list(source)
    kinds = [f.kind for f in seen]
    assert kinds[0] == "meta" and kinds[-1] == "done", kinds
    last_hit = max(i for i, kind in enumerate(kinds) if kind == "hit")
    degraded = kinds.index("degraded")
    # Qdrant answered: its hits came at once; the graph stage waited for Neo4j.
    assert last_hit < degraded
    heartbeats = [f for f in seen[last_hit:degraded] if f.kind == "comment"]
    assert len(heartbeats) >= 3, f"heartbeats while waiting on Neo4j: {kinds}"
    assert seen[degraded].data == {"store": "neo4j", "reason": "timeout"}
    assert seen[degraded].at - seen[last_hit].at >= STORE_TIMEOUT_S * 0.9


def test_a_client_that_leaves_cancels_its_query(
    pipeline: Pipeline, stack: LocalStack, corpus: list[str]
) -> None:
    before = metric(pipeline, "docstream_query_cancelled_total")
    with neo4j_frozen(stack):
        with stream(pipeline, q="sapphire lanterns", k=2) as source:
            first_hit = next(f for f in source if f.kind == "hit")
        # The connection is closed while the graph stage waits on Neo4j.
        assert first_hit.data["doc_id"] in corpus
        eventually(
            lambda: metric(pipeline, "docstream_query_cancelled_total") == before + 1,
            "the query was counted as cancelled",
            timeout_s=STORE_TIMEOUT_S * 2,
        )
    assert "query cancelled: the client disconnected" in pipeline.log_tail(200)
    # The worker's graph side recovers once Neo4j wakes up.
    eventually(
        lambda: (
            not any(f.kind == "degraded" for f in stream_all(pipeline, q="sapphire lanterns", k=2))
        ),
        "queries answer without degradation after Neo4j wakes",
        timeout_s=60,
    )


def stream_all(pipeline: Pipeline, **params: Any) -> list[Frame]:
    with stream(pipeline, **params) as source:
        return list(source)
