"""Failures the pipeline survives on the real stack: a store that goes away
(back-pressure, nothing dead-lettered, the graph catches up) and a worker
killed mid-stream (a restart converges to the same state as a clean run), on
Qdrant Edge and on a Qdrant server."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from schemas.codec import codec_for
from tests.integration.conftest import TEST_API_KEY, Pipeline
from tests.integration.helpers import eventually, metric, read_all, sse_query
from tools.stack.local import LocalStack

pytestmark = pytest.mark.integration
ENGINES = ("edge", "server")  # once on Qdrant Edge, once on a server (conftest)
AUTH = {"X-API-Key": TEST_API_KEY}


def document(run_id: str, name: str, n: int) -> dict[str, Any]:
    text = " ".join(
        f"Note {i} about {name}: the {name} ledger lists crate {i} and its weight in kilograms."
        for i in range(n)
    )
    return {"doc_id": f"{run_id}-{name}", "title": name, "text": text}


def post_batch(pipeline: Pipeline, docs: list[dict[str, Any]]) -> None:
    response = httpx.post(f"{pipeline.base_url}/documents", json=docs, headers=AUTH, timeout=30)
    assert response.status_code == 202, response.text


def status(pipeline: Pipeline, doc_id: str) -> dict[str, Any] | None:
    try:
        response = httpx.get(f"{pipeline.base_url}/documents/{doc_id}", timeout=10)
    except httpx.HTTPError:
        return None
    return dict(response.json()) if response.status_code == 200 else None


def all_indexed(pipeline: Pipeline, doc_ids: list[str]) -> list[dict[str, Any]] | None:
    found = [status(pipeline, d) for d in doc_ids]
    if all(s is not None and s["status"] == "indexed" for s in found):
        return [s for s in found if s is not None]
    return None


def dead_letters_of(pipeline: Pipeline, doc_ids: list[str]) -> list[dict[str, Any]]:
    topics = pipeline.settings.kafka.topics
    found = []
    for topic in (topics.documents, topics.chunks, topics.chunks_embedded):
        for message in read_all(pipeline.settings.kafka, topics.dead_letter(topic)):
            letter = codec_for("DeadLetter").decode(message.value())
            if (letter["key"] or b"").decode() in doc_ids:
                found.append(letter)
    return found


def test_neo4j_down_pauses_only_its_sink_and_the_graph_catches_up(
    pipeline: Pipeline, stack: LocalStack, run_id: str
) -> None:
    docs = [document(run_id, f"outage{i}", 4) for i in range(6)]
    doc_ids = [d["doc_id"] for d in docs]
    opened = {"sink": "neo4j-sink", "state": "open"}
    opened_before = metric(pipeline, "docstream_breaker_transitions_total", **opened)
    assert stack.down(only=["neo4j"]) == ["neo4j"], "this test stops the stack's own Neo4j"
    try:
        post_batch(pipeline, docs)

        def qdrant_has_everything() -> bool:
            found = [status(pipeline, d) for d in doc_ids]
            return all(
                s is not None and s["qdrant"].get("points") == s["chunk_count"] > 0 for s in found
            )

        eventually(qdrant_has_everything, "the Qdrant sink keeps going without Neo4j")
        eventually(
            lambda: metric(pipeline, "docstream_consumer_paused", stage="neo4j-sink") == 1,
            "the Neo4j sink's consumer paused",
        )
        # That it opened, not that it is open at this instant: the consumer may
        # pause before the third failed write opens it, and every reset timeout
        # the breaker goes half-open (the gauge reads 0) for one trial write.
        eventually(
            lambda: (
                metric(pipeline, "docstream_breaker_transitions_total", **opened) > opened_before
            ),
            "the Neo4j sink's breaker opened",
        )
        events = sse_query(pipeline, "outage3 ledger crate weight")
        degraded = [data for kind, data in events if kind == "degraded"]
        assert [d["store"] for d in degraded] == ["neo4j"]
        assert any(kind == "hit" for kind, _ in events), "dense hits still arrive"
    finally:
        stack.start("neo4j")

    indexed = eventually(lambda: all_indexed(pipeline, doc_ids), "the graph caught up", 180)
    assert all(s["neo4j"]["chunks"] == s["chunk_count"] for s in indexed)
    assert dead_letters_of(pipeline, doc_ids) == [], "an outage is never a dead letter"
    eventually(
        lambda: metric(pipeline, "docstream_breaker_open", sink="neo4j-sink") == 0,
        "the breaker closed again",
    )


def test_a_worker_killed_mid_stream_converges_to_a_clean_state(
    pipeline: Pipeline, run_id: str
) -> None:
    docs = [document(run_id, f"crash{i}", 5) for i in range(12)]
    doc_ids = [d["doc_id"] for d in docs]
    post_batch(pipeline, docs)
    # Let part of the stream through, then pull the plug.
    eventually(
        lambda: any((status(pipeline, d) or {}).get("status") for d in doc_ids), "work began"
    )
    time.sleep(1.0)
    pipeline.kill()
    pipeline.start()

    indexed = eventually(lambda: all_indexed(pipeline, doc_ids), "every document indexed", 240)
    for found in indexed:
        # Exactly the chunks of the indexed version in each store: nothing lost, no duplicates.
        assert found["qdrant"] == {
            "points": found["chunk_count"],
            "of_indexed_version": found["chunk_count"],
        }
        assert found["neo4j"] == {
            "chunks": found["chunk_count"],
            "of_indexed_version": found["chunk_count"],
        }
    lines = [json.loads(x) for x in pipeline.log_path.read_text().splitlines() if x.startswith("{")]
    assert sum(1 for line in lines if line.get("msg") == "worker starting") >= 2
