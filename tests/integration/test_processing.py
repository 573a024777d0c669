"""Stateful processing on the real stack: versions, deletes, orphans, links,
entities, dead letters at a sink, and correlation ids everywhere."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from neo4j import Driver

from core.correlation import CORRELATION_HEADER
from core.kafka.config import client_config
from schemas.codec import codec_for
from tests.integration.conftest import TEST_API_KEY, Pipeline
from tests.integration.helpers import eventually, metric, read_all, sse_query

pytestmark = pytest.mark.integration
ENGINES = ("edge", "server")  # once on Qdrant Edge, once on a server (conftest)
AUTH = {"X-API-Key": TEST_API_KEY}
LONG = " ".join(
    f"Section {n} of the lighthouse keeper's log records the fog at dusk and the lamp's oil "
    f"level before storm number {n} reached the rocky northern cape."
    for n in range(1, 7)
)


def post(pipeline: Pipeline, doc: dict[str, Any], correlation_id: str = "") -> dict[str, Any]:
    headers = {**AUTH, **({"X-Correlation-ID": correlation_id} if correlation_id else {})}
    response = httpx.post(f"{pipeline.base_url}/documents", json=doc, headers=headers)
    assert response.status_code == 202, response.text
    return dict(response.json())


def status(pipeline: Pipeline, doc_id: str) -> dict[str, Any] | None:
    response = httpx.get(f"{pipeline.base_url}/documents/{doc_id}")
    return dict(response.json()) if response.status_code == 200 else None


def settled(pipeline: Pipeline, doc_id: str, version: int, want: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        found = status(pipeline, doc_id)
        if found and found["version"] == version and found["status"] == want:
            return found
        return None

    return eventually(check, f"{doc_id} v{version} {want}", timeout_s=150)


def test_a_shorter_new_version_leaves_no_orphans_in_either_store(
    pipeline: Pipeline, run_id: str
) -> None:
    doc_id = f"{run_id}-lighthouse"
    post(pipeline, {"doc_id": doc_id, "version": 1, "text": LONG})
    first = settled(pipeline, doc_id, 1, "indexed")
    assert first["chunk_count"] >= 3

    post(pipeline, {"doc_id": doc_id, "version": 2, "text": "The lighthouse was automated."})
    second = settled(pipeline, doc_id, 2, "indexed")
    assert second["chunk_count"] == 1
    assert second["qdrant"] == {"points": 1, "of_indexed_version": 1}
    assert second["neo4j"] == {"chunks": 1, "of_indexed_version": 1}


def test_a_delete_leaves_nothing_in_either_store(
    pipeline: Pipeline, run_id: str, neo4j_driver: Driver
) -> None:
    doc_id = f"{run_id}-to-delete"
    post(pipeline, {"doc_id": doc_id, "version": 1, "text": LONG, "links": [f"{run_id}-x"]})
    settled(pipeline, doc_id, 1, "indexed")
    response = httpx.delete(f"{pipeline.base_url}/documents/{doc_id}", headers=AUTH)
    assert response.status_code == 202
    gone = settled(pipeline, doc_id, response.json()["version"], "deleted")
    assert gone["qdrant"]["points"] == 0 and gone["neo4j"]["chunks"] == 0
    records, _, _ = neo4j_driver.execute_query(
        "MATCH (d:Document {doc_id: $id}) RETURN d", id=doc_id
    )
    assert records == [], "the document node goes too (nothing links to it)"


def test_an_older_version_after_a_newer_one_changes_nothing(
    pipeline: Pipeline, run_id: str
) -> None:
    doc_id = f"{run_id}-versions"
    post(
        pipeline,
        {"doc_id": doc_id, "version": 10, "text": "Saffron crocus fields bloom in October."},
    )
    settled(pipeline, doc_id, 10, "indexed")
    stale_before = metric(pipeline, "docstream_events_total", stage="chunker", outcome="stale")
    post(pipeline, {"doc_id": doc_id, "version": 9, "text": "Obsolete text about tulips."})
    eventually(
        lambda: (
            metric(pipeline, "docstream_events_total", stage="chunker", outcome="stale")
            > stale_before
        ),
        "the chunker counted the stale version",
    )
    current = status(pipeline, doc_id)
    assert current is not None and current["version"] == 10 and current["status"] == "indexed"
    hits = [
        d
        for k, d in sse_query(pipeline, "saffron crocus fields")
        if k == "hit" and d["doc_id"] == doc_id
    ]
    assert hits and "Saffron" in hits[0]["text"]


def test_identical_content_is_not_embedded_again(pipeline: Pipeline, run_id: str) -> None:
    doc_id = f"{run_id}-same"
    text = "Copper kettles whistle louder than steel ones."
    post(pipeline, {"doc_id": doc_id, "version": 1, "text": text})
    settled(pipeline, doc_id, 1, "indexed")
    embedded_before = metric(pipeline, "docstream_events_total", stage="embedder", outcome="ok")
    unchanged_before = metric(
        pipeline, "docstream_events_total", stage="chunker", outcome="unchanged"
    )
    post(pipeline, {"doc_id": doc_id, "version": 2, "text": text})
    eventually(
        lambda: (
            metric(pipeline, "docstream_events_total", stage="chunker", outcome="unchanged")
            > unchanged_before
        ),
        "the chunker saw the unchanged version",
    )
    assert (
        metric(pipeline, "docstream_events_total", stage="embedder", outcome="ok")
        == embedded_before
    )
    assert status(pipeline, doc_id)["version"] == 2  # type: ignore[index]


def test_links_create_placeholders_that_their_own_event_fills(
    pipeline: Pipeline, run_id: str, neo4j_driver: Driver
) -> None:
    citing, cited = f"{run_id}-citing", f"{run_id}-cited"
    post(pipeline, {"doc_id": citing, "text": "Apache Kafka keeps the log.", "links": [cited]})

    def placeholder() -> bool | None:
        records, _, _ = neo4j_driver.execute_query(
            "MATCH (:Document {doc_id: $a})-[:LINKS_TO]->(b:Document {doc_id: $b}) "
            "RETURN b.placeholder AS p",
            a=citing,
            b=cited,
        )
        return records[0]["p"] if records else None

    assert eventually(placeholder, "a LINKS_TO edge to a placeholder") is True
    post(pipeline, {"doc_id": cited, "text": "Neo4j stores the graph."})
    eventually(lambda: placeholder() is False, "the placeholder filled in")
    records, _, _ = neo4j_driver.execute_query(
        "MATCH (:Document {doc_id: $a})-[:HAS_CHUNK]->(:Chunk)-[:MENTIONS]->(e:Entity) "
        "RETURN collect(e.name) AS names",
        a=citing,
    )
    assert "Apache Kafka" in records[0]["names"]


def test_a_poison_event_at_a_sink_is_dead_lettered_alone(pipeline: Pipeline, run_id: str) -> None:
    """A vector of the wrong size can never go into Qdrant: only it is dead-lettered,
    its neighbours in the same batch are indexed."""
    topics = pipeline.settings.kafka.topics
    producer = Producer(client_config(pipeline.settings.kafka))
    codec = codec_for("EmbeddedChunk")
    good_vector = [0.0] * 383 + [1.0]
    for index, (suffix, vector) in enumerate(
        [("ok-a", good_vector), ("bad", [1.0, 0.0]), ("ok-b", good_vector)]
    ):
        doc_id = f"{run_id}-sink-{suffix}"
        record = {
            "chunk_id": f"00000000-0000-5000-8000-{index:012d}",
            "doc_id": doc_id,
            "version": 1,
            "index": 0,
            "chunk_count": 1,
            "text": f"Sink batch member {suffix}.",
            "start": 0,
            "end": 10,
            "occurred_at": 1,
            "model": "test",
            "vector": vector,
        }
        producer.produce(
            topics.chunks_embedded,
            key=doc_id.encode(),
            value=codec.encode(record),
            headers=[(CORRELATION_HEADER, b"sink-poison")],
        )
    assert producer.flush(15) == 0

    def dead_letters() -> list[dict[str, Any]] | None:
        messages = read_all(pipeline.settings.kafka, topics.dead_letter(topics.chunks_embedded))
        found = [codec_for("DeadLetter").decode(m.value()) for m in messages]
        mine = [d for d in found if d["correlation_id"] == "sink-poison"]
        return mine or None

    letters = eventually(dead_letters, "the bad chunk in the dead-letter topic")
    assert [d["stage"] for d in letters] == ["qdrant-sink"]
    assert codec.decode(letters[0]["value"])["doc_id"] == f"{run_id}-sink-bad"


def test_the_correlation_id_reaches_qdrant_neo4j_and_the_logs(
    pipeline: Pipeline, run_id: str, neo4j_driver: Driver
) -> None:
    doc_id, correlation_id = f"{run_id}-traced", f"trace-{run_id}"
    post(
        pipeline,
        {"doc_id": doc_id, "text": "Marmalade cats nap on warm radiators."},
        correlation_id,
    )
    done = settled(pipeline, doc_id, status_version(pipeline, doc_id), "indexed")
    assert done["correlation_id"] == correlation_id
    hits = [
        d
        for k, d in sse_query(pipeline, "marmalade cats nap")
        if k == "hit" and d["doc_id"] == doc_id
    ]
    assert hits[0]["correlation_id"] == correlation_id  # from the Qdrant payload
    records, _, _ = neo4j_driver.execute_query(
        "MATCH (d:Document {doc_id: $id})-[:HAS_CHUNK]->(c:Chunk) "
        "RETURN d.correlation_id AS d, collect(c.correlation_id) AS c",
        id=doc_id,
    )
    assert records[0]["d"] == correlation_id and set(records[0]["c"]) == {correlation_id}
    lines = [
        json.loads(line)
        for line in pipeline.log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    stages = {line["logger"] for line in lines if line.get("correlation_id") == correlation_id}
    assert {"streams.stages", "api.intake"} <= stages, stages


def status_version(pipeline: Pipeline, doc_id: str) -> int:
    found = eventually(lambda: status(pipeline, doc_id), f"{doc_id} seen by the pipeline")
    return int(found["version"])


def test_status_of_an_unknown_document_is_404(pipeline: Pipeline) -> None:
    response = httpx.get(f"{pipeline.base_url}/documents/never-published-anywhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
