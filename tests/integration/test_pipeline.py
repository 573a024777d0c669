"""The vertical slice on real services: Kafka, Neo4j over Bolt, Qdrant (Edge,
then a server), the Faust worker and the SSE edge, driven the way a user
drives them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from neo4j import Driver

from core.correlation import CORRELATION_HEADER, decode_headers
from core.kafka.config import client_config
from schemas.codec import codec_for
from tests.integration.conftest import Pipeline
from tests.integration.helpers import (
    eventually,
    read_all,
    read_topic,
    sse_query,
    stored_index,
    wait_for_doc,
)

pytestmark = pytest.mark.integration
ENGINES = ("edge", "server")  # once on Qdrant Edge, once on a server (conftest)

# Each document has a sentence no other has, so a query for it finds it first.
DOCUMENTS = {
    "alpha": "The zebrafinch observatory counts migrating songbirds at dawn every spring. "
    "Volunteers log each sighting in a shared notebook.",
    "beta": "A quasar lamp glows when cosmic rays strike its crystal core. "
    "Museum visitors watch the flashes in a darkened hall.",
    "gamma": " ".join(
        f"Chapter {n} of the tundra piano manual explains how cold air tightens the strings "
        f"and why tuners warm the hammers before concert number {n}."
        for n in range(1, 7)
    ),
}


@pytest.fixture(scope="module")
def published(
    pipeline: Pipeline, run_id: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    correlation_id = f"corr-{uuid.uuid4().hex[:12]}"
    corpus = tmp_path_factory.mktemp("corpus") / "docs.jsonl"
    doc_ids = {name: f"{run_id}-{name}" for name in DOCUMENTS}
    corpus.write_text(
        "\n".join(
            json.dumps({"doc_id": doc_ids[name], "title": name.title(), "text": text})
            for name, text in DOCUMENTS.items()
        )
    )
    result = pipeline.cli("publish", str(corpus), "--correlation-id", correlation_id)
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout)["sent"] == 3
    return {"correlation_id": correlation_id, "doc_ids": doc_ids}


def test_an_sse_query_finds_each_published_document_with_its_correlation_id(
    pipeline: Pipeline, published: dict[str, Any]
) -> None:
    for name, doc_id in published["doc_ids"].items():
        hits = wait_for_doc(pipeline, doc_id, DOCUMENTS[name].split(".")[0])
        mine = [h for h in hits if h["doc_id"] == doc_id]
        assert mine[0]["correlation_id"] == published["correlation_id"]
        assert {"rank", "doc_id", "chunk_id", "score", "text", "correlation_id"} <= set(mine[0])


def test_the_sse_stream_is_meta_hits_then_done(
    pipeline: Pipeline, published: dict[str, Any]
) -> None:
    wait_for_doc(pipeline, published["doc_ids"]["gamma"], "tundra piano manual")

    def with_graph_hit() -> list[tuple[str, dict[str, Any]]] | None:
        events = sse_query(pipeline, "tundra piano manual", k=2)
        return events if any(d.get("retriever") == "graph" for _, d in events) else None

    # The graph step adds a neighbouring chunk of a best hit (a NEXT edge in Neo4j).
    events = eventually(with_graph_hit, "a graph-expanded hit for the tundra piano manual")
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "meta" and kinds[-1] == "done"
    assert set(kinds[1:-1]) == {"hit"}, kinds
    assert "total_ms" in events[-1][1]["timings"]
    graph_hit = next(d for _, d in events if d.get("retriever") == "graph")
    assert graph_hit["doc_id"] == published["doc_ids"]["gamma"]
    assert graph_hit["via"] in {d["chunk_id"] for _, d in events if d.get("retriever") == "dense"}


def graph_of(driver: Driver, doc_ids: list[str]) -> dict[str, dict[str, Any]]:
    records, _, _ = driver.execute_query(
        """
        MATCH (d:Document) WHERE d.doc_id IN $ids
        OPTIONAL MATCH (d)-[:HAS_CHUNK]->(c:Chunk)
        OPTIONAL MATCH (c)-[n:NEXT]->(:Chunk)
        RETURN d.doc_id AS doc_id, collect(DISTINCT c.chunk_id) AS chunks,
               max(c.chunk_count) AS chunk_count,
               count(DISTINCT n) AS next_edges,
               collect(DISTINCT c.correlation_id) AS correlation_ids
        """,
        ids=doc_ids,
    )
    return {r["doc_id"]: dict(r) for r in records}


def complete_graph(driver: Driver, doc_ids: list[str]) -> dict[str, dict[str, Any]] | None:
    """The graph of these documents once every one of their chunks is written."""
    graph = graph_of(driver, doc_ids)
    done = len(graph) == len(doc_ids) and all(
        len(d["chunks"]) == d["chunk_count"] for d in graph.values()
    )
    return graph if done else None


def test_neo4j_holds_documents_chunks_and_next_edges(
    pipeline: Pipeline, published: dict[str, Any], neo4j_driver: Driver
) -> None:
    doc_ids = published["doc_ids"]
    graph = eventually(
        lambda: complete_graph(neo4j_driver, list(doc_ids.values())),
        "every document and chunk in Neo4j",
    )
    assert set(graph) == set(doc_ids.values())
    gamma = graph[doc_ids["gamma"]]
    assert len(gamma["chunks"]) >= 3, "the long document should have several chunks"
    assert gamma["next_edges"] == len(gamma["chunks"]) - 1
    assert all(g["correlation_ids"] == [published["correlation_id"]] for g in graph.values())


def test_caught_up_in_status_means_both_stores_hold_everything_published(
    pipeline: Pipeline, run_id: str, tmp_path: Any
) -> None:
    """`docstream status` reads committed offsets, then the ends: once it says
    caught up, every document published before is in both stores at that
    moment (not some seconds later)."""
    doc_ids = [f"{run_id}-caught-{n}" for n in range(24)]
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(
        "\n".join(
            json.dumps({"doc_id": d, "title": d, "text": f"{DOCUMENTS['gamma']} Copy {d}."})
            for d in doc_ids
        )
    )
    assert pipeline.cli("publish", str(corpus)).returncode == 0

    def caught_up() -> dict[str, Any] | None:
        done = pipeline.cli("status", "--json")
        report = json.loads(done.stdout) if done.returncode == 0 else {}
        return report if report.get("kafka", {}).get("caught_up") else None

    report = eventually(caught_up, "status says caught up", timeout_s=240)
    assert all(group["lag"] == 0 for group in report["kafka"]["groups"].values())
    statuses = {}
    for doc_id in doc_ids:
        answer = httpx.get(f"{pipeline.base_url}/documents/{doc_id}", timeout=30)
        statuses[doc_id] = answer.json().get("status") if answer.status_code == 200 else None
    assert set(statuses.values()) == {"indexed"}, statuses


def test_bytes_on_the_documents_topic_decode_with_the_schema(
    pipeline: Pipeline, published: dict[str, Any]
) -> None:
    topics = pipeline.settings.kafka.topics
    # By assignment, not a consumer group: no group join to wait for on a busy machine.
    messages = read_all(pipeline.settings.kafka, topics.documents)
    decoded = {codec_for("DocumentEvent").decode(m.value())["doc_id"]: m for m in messages}
    assert set(published["doc_ids"].values()) <= set(decoded)
    for doc_id in published["doc_ids"].values():
        message = decoded[doc_id]
        assert message.key() == doc_id.encode()
        headers = decode_headers(message.headers())
        assert headers[CORRELATION_HEADER] == published["correlation_id"]
        assert headers["schema"] == codec_for("DocumentEvent").fingerprint_hex


def test_a_malformed_message_is_dead_lettered_and_the_stream_goes_on(
    pipeline: Pipeline, published: dict[str, Any], run_id: str
) -> None:
    topics = pipeline.settings.kafka.topics
    bad_key, poison = f"{run_id}-poison".encode(), b'{"this is": "json, not avro"}'
    producer = Producer(client_config(pipeline.settings.kafka))
    producer.produce(
        topics.documents, key=bad_key, value=poison, headers=[(CORRELATION_HEADER, b"bad-1")]
    )
    assert producer.flush(15) == 0

    after = f"{run_id}-after"
    line = json.dumps(
        {"doc_id": after, "text": "Glass harmonicas hum when wet fingers circle the rims."}
    )
    result = pipeline.cli("publish", "-", stdin=line.encode())
    assert result.returncode == 0, result.stderr.decode()
    wait_for_doc(pipeline, after, "glass harmonicas hum")

    letters = read_topic(pipeline.settings.kafka, topics.dead_letter(topics.documents), 1)
    records = [codec_for("DeadLetter").decode(m.value()) for m in letters]
    mine = [r for r in records if r["key"] == bad_key]
    assert len(mine) == 1
    assert mine[0]["value"] == poison
    assert mine[0]["stage"] == "chunker" and mine[0]["error_class"] == "BadMarker"
    assert mine[0]["correlation_id"] == "bad-1"
    assert pipeline.process is not None and pipeline.process.poll() is None, (
        "the worker must survive"
    )


def test_qdrant_holds_the_same_chunk_ids_as_neo4j(
    pipeline: Pipeline, published: dict[str, Any], neo4j_driver: Driver
) -> None:
    doc_ids = list(published["doc_ids"].values())
    graph = eventually(lambda: complete_graph(neo4j_driver, doc_ids), "every chunk in Neo4j")
    # The embedded Qdrant admits one process at a time: stop the worker to look.
    pipeline.stop()
    stored = stored_index(pipeline.settings.qdrant)
    by_doc: dict[str, set[str]] = {}
    for point_id, payload in stored.points.items():
        by_doc.setdefault(payload["doc_id"], set()).add(point_id)
        if payload["doc_id"] in doc_ids:
            assert payload["correlation_id"] == published["correlation_id"]
    for doc_id in doc_ids:
        assert by_doc[doc_id] == set(graph[doc_id]["chunks"])
