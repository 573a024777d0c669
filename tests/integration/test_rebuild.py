"""Rebuild on the real stack: both indexes are rebuilt from chunks.embedded into
a new generation while queries run, the switch loses nothing (a document
published during the rebuild included), and the old generation is gone."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
from neo4j import Driver

from tests.integration.conftest import TEST_API_KEY, Pipeline
from tests.integration.helpers import eventually, stored_index

pytestmark = pytest.mark.integration
ENGINES = ("edge", "server")  # once on Qdrant Edge, once on a server (conftest)
AUTH = {"X-API-Key": TEST_API_KEY}
TOPICS = ["harbour cranes", "tidal turbines", "glacier survey", "orchard bees", "kiln firing"]


def publish(pipeline: Pipeline, docs: list[dict[str, Any]]) -> None:
    response = httpx.post(f"{pipeline.base_url}/documents", json=docs, headers=AUTH, timeout=30)
    assert response.status_code == 202, response.text


def indexed(pipeline: Pipeline, doc_id: str) -> bool:
    body = httpx.get(f"{pipeline.base_url}/documents/{doc_id}", timeout=10).json()
    return bool(body.get("status") == "indexed")


def chunks_by_gen(driver: Driver, prefix: str) -> dict[str, set[str]]:
    records = driver.execute_query(
        "MATCH (c:Chunk) WHERE c.doc_id STARTS WITH $prefix RETURN c.gen AS gen, c.chunk_id AS id",
        prefix=prefix,
    ).records
    found: dict[str, set[str]] = {}
    for record in records:
        found.setdefault(record["gen"], set()).add(record["id"])
    return found


class QueryLoop(threading.Thread):
    """Queries the API without pause and keeps every error and empty answer."""

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__(daemon=True)
        self.pipeline = pipeline
        self.stop = threading.Event()
        self.answered = 0
        self.degraded = 0
        self.bad: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.pipeline.base_url, timeout=30) as client:
            while not self.stop.is_set():
                topic = TOPICS[self.answered % len(TOPICS)]
                try:
                    response = client.get("/query", params={"q": topic, "k": 3, "expand": 2})
                    body = response.json()
                    if response.status_code != 200 or not body["hits"]:
                        self.bad.append(f"{response.status_code}: {str(body)[:300]}")
                    # A store slower than its timeout for a moment (a busy
                    # machine, an index build) is reported, not an error.
                    self.degraded += bool(body.get("degraded"))
                except (httpx.HTTPError, ValueError) as exc:
                    self.bad.append(repr(exc))
                self.answered += 1


@pytest.fixture(scope="module")
def corpus(pipeline: Pipeline, run_id: str) -> list[str]:
    docs = [
        {
            "doc_id": f"{run_id}-rb-{i}",
            "text": f"Field notes on {topic}. " * 6 + f"Entry {i} of the Rebuild Log.",
            "links": [f"{run_id}-rb-{(i + 1) % len(TOPICS)}"],
        }
        for i, topic in enumerate(TOPICS)
    ]
    publish(pipeline, docs)
    ids = [d["doc_id"] for d in docs]
    for doc_id in ids:
        eventually(lambda d=doc_id: indexed(pipeline, d), f"{doc_id} indexed")
    return ids


# Real queries, over this module's corpus only: the run's topics (and so the
# rebuilt index) hold other modules' events too, some never in the live index
# (written straight to a store, or deleted from one by their test).
QUESTIONS = [*TOPICS, "rebuild log entry", "field notes", "surveyed at dawn", "bees and kilns"]


def top10(pipeline: Pipeline, corpus: list[str]) -> dict[str, list[str]]:
    """Each question's ten nearest chunks among `corpus`'s documents, in order
    (scores are ranks fused, so they are not compared). Dense only: the vector
    index is what a rebuild builds anew; lexical scores move with the
    statistics of the whole index, which other documents change."""
    answers = {}
    for q in QUESTIONS:
        response = httpx.get(
            f"{pipeline.base_url}/query",
            params={"q": q, "k": 10, "expand": 0, "mode": "dense", "doc_id": corpus},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        answers[q] = [h["chunk_id"] for h in response.json()["hits"]]
    return answers


def test_a_rebuild_under_queries_switches_both_stores_without_a_gap(
    pipeline: Pipeline, corpus: list[str], run_id: str, neo4j_driver: Driver
) -> None:
    prefix = f"{run_id}-rb-"
    late = f"{run_id}-rb-late"
    answers_before = top10(pipeline, corpus)
    assert all(answers_before.values()), "every question must find something, or this shows nothing"
    before = chunks_by_gen(neo4j_driver, prefix)
    [old_gen] = before  # one generation (not always :0: other tests may rebuild too)
    loop = QueryLoop(pipeline)
    loop.start()
    try:
        started = httpx.post(
            f"{pipeline.base_url}/admin/rebuild", json={"target": "all"}, headers=AUTH
        )
        assert started.status_code == 202, started.text
        publish(pipeline, [{"doc_id": late, "text": "Harbour cranes, noted during the rebuild."}])
        report = eventually(
            lambda: (
                r
                if not (r := httpx.get(f"{pipeline.base_url}/admin/rebuild", headers=AUTH).json())[
                    "running"
                ]
                else None
            ),
            "the rebuild finished",
            timeout_s=180,
        )
        time.sleep(1)  # a few queries after the switch as well
    finally:
        loop.stop.set()
        loop.join(timeout=60)
    assert {t["target"]: t["phase"] for t in report["targets"]} == {
        "qdrant": "done",
        "neo4j": "done",
    }, report
    assert loop.answered > 0 and loop.bad == [], loop.bad[:5]

    eventually(lambda: indexed(pipeline, late), f"{late} indexed after the switch")
    after = chunks_by_gen(neo4j_driver, prefix)
    gens = {t["target"]: t["generation"] for t in report["targets"]}
    new_gen = gens["neo4j"]
    assert list(after) == [new_gen] and new_gen != old_gen
    late_chunks = {c for c in after[new_gen] if c not in before[old_gen]}
    assert after[new_gen] - late_chunks == before[old_gen], "the same chunks, no more"
    assert late_chunks, "the document published during the rebuild is in the new generation"
    # The new generation answers as the old one did: the same ten, in order.
    assert top10(pipeline, corpus) == answers_before

    # The embedded Qdrant admits one process at a time: stop the worker to look.
    pipeline.stop()
    stored = stored_index(pipeline.settings.qdrant)
    alias = pipeline.settings.qdrant.collection
    assert stored.active == gens["qdrant"] != f"{alias}-g0"
    assert stored.graph_built is not False, "a server generation switched to without its graph"
    assert stored.generations == [stored.active], "the old generation is gone"
    # The run's topics carry other modules' events too: compare this corpus.
    ours = {p for p, payload in stored.points.items() if payload["doc_id"].startswith(prefix)}
    assert ours == after[new_gen], "Qdrant's new generation holds the same chunks as Neo4j's"
