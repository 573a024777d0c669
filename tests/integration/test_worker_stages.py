"""Workers that split the stages between them (DOCSTREAM_WORKER_STAGES): the
lead worker owns the embedded Qdrant and serves the API; a second one, with
--no-api, shares the chunker, embedder and Neo4j sink groups over 4 partitions
and still answers its probes and its scrape."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx
import pytest
from neo4j import Driver

from bench.pipeline import wait_ready
from tests.integration.conftest import REPO, Pipeline
from tests.integration.helpers import eventually, read_all, wait_for_doc
from tests.integration.test_resilience import document, post_batch
from tools.stack.ports import free_port

pytestmark = pytest.mark.integration
# Qdrant Edge only: the split exists because an embedded Qdrant admits one
# process (the lead's). Over a server every worker may run every stage, and the
# last test here (an API without the Qdrant sink is refused) does not apply.
PIPELINE_ENV = {"DOCSTREAM_PARTITIONS": "4"}
HELPER_STAGES = "chunker,embedder,neo4j-sink"


class Helper:
    """The second worker: its own port, the same topics and groups."""

    def __init__(self, pipeline: Pipeline) -> None:
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = pipeline.log_path.with_name("helper.log")
        env = {**pipeline.env, "DOCSTREAM_API_PORT": str(port)}
        env["DOCSTREAM_WORKER_STAGES"] = HELPER_STAGES
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ops.cli", "worker", "--no-api"],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def metric_total(self, name: str, **labels: str) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(f"{self.base_url}/metrics", timeout=10).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def helper(pipeline: Pipeline) -> Iterator[Helper]:
    worker = Helper(pipeline)
    try:
        wait_ready(worker.base_url, worker.process, worker.log_path)
        # Ready is not yet a member: wait until the groups have rebalanced.
        for stage in ("embedder", "neo4j-sink"):
            eventually(
                partial(worker.metric_total, "docstream_assigned_partitions", stage=stage),
                f"the helper holds partitions of the {stage} group",
                timeout_s=180,
            )
        yield worker
    finally:
        worker.stop()


def test_a_worker_without_the_api_serves_probes_and_metrics_only(helper: Helper) -> None:
    ready = httpx.get(f"{helper.base_url}/health/ready", timeout=10).json()
    # It writes no Qdrant, so it does not depend on it (nor open the embedded store).
    assert set(ready["dependencies"]) == {"kafka", "neo4j"}
    assert httpx.get(f"{helper.base_url}/health/live", timeout=10).status_code == 200
    assert "docstream_events_total" in httpx.get(f"{helper.base_url}/metrics").text
    assert httpx.get(f"{helper.base_url}/query", params={"q": "x"}).status_code == 404


def test_two_workers_share_the_stages_and_lose_nothing(
    pipeline: Pipeline, helper: Helper, run_id: str, neo4j_driver: Driver
) -> None:
    docs = [document(run_id, f"split{i}", 3) for i in range(12)]
    post_batch(pipeline, docs)
    for doc in docs:
        wait_for_doc(pipeline, doc["doc_id"], f"{doc['title']} ledger crate")

    def graph_holds_every_document() -> bool:
        records, _, _ = neo4j_driver.execute_query(
            "MATCH (c:Chunk) WHERE c.doc_id STARTS WITH $prefix "
            "RETURN count(DISTINCT c.doc_id) AS docs",
            prefix=f"{run_id}-split",
        )
        return int(records[0]["docs"]) == len(docs)

    eventually(graph_holds_every_document, "the graph holds every document")
    # The helper really took a share of the partitions of the stages it runs.
    assert helper.metric_total("docstream_events_total", stage="embedder") > 0
    assert helper.metric_total("docstream_events_total", stage="neo4j-sink") > 0
    assert helper.metric_total("docstream_events_total", stage="qdrant-sink") == 0


def test_each_document_state_lands_in_its_documents_partition(
    pipeline: Pipeline, helper: Helper, run_id: str
) -> None:
    """The chunker writes a batch's states after the batch, each with its own
    event's partition: the changelog stays partitioned like `documents` (whose
    partitions the intake's producer chose), so the worker given a partition
    recovers that partition's rows. Two versions of a document in one POST
    (most likely one batch) end at the later one."""
    docs = [{**document(run_id, f"rows{i}", 2), "version": 1} for i in range(16)]
    later = {**docs[0], "version": 2, "text": docs[0]["text"] + " A crate was added."}
    post_batch(pipeline, [*docs, later])
    for doc in docs:
        wait_for_doc(pipeline, doc["doc_id"], f"{doc['title']} ledger crate")
    kafka = pipeline.settings.kafka
    wanted = {doc["doc_id"].encode() for doc in docs}
    changelog = f"{kafka.group_id}-document_state-changelog"

    def every_row() -> list[tuple[bytes, int, dict[str, Any]]] | None:
        # Either worker may hold a document's row (its partition's chunker wrote it).
        found = [
            (_plain(m.key()), m.partition(), json.loads(m.value()))
            for m in read_all(kafka, changelog)
        ]
        found = [row for row in found if row[0] in wanted]
        return found if {key for key, _, _ in found} == wanted else None

    rows = eventually(every_row, "a changelog row for every document")
    placed = {m.key(): m.partition() for m in read_all(kafka, kafka.topics.documents)}
    assert len({placed[k] for k in wanted}) > 1, "the documents span several partitions"
    assert [(key, p) for key, p, _ in rows if p != placed[key]] == []
    last = [value for key, _, value in rows if key == later["doc_id"].encode()][-1]
    assert (last["version"], last["status"]) == (2, "chunked")


def _plain(key: bytes) -> bytes:
    """A table key as the changelog holds it (a JSON string) → the doc id's bytes."""
    try:
        return str(json.loads(key)).encode()
    except ValueError:
        return key


def test_an_api_over_an_embedded_qdrant_needs_the_qdrant_sink(pipeline: Pipeline) -> None:
    env = {**pipeline.env, "DOCSTREAM_WORKER_STAGES": HELPER_STAGES}
    done = subprocess.run(
        [sys.executable, "-m", "ops.cli", "worker"],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert b"--no-api" in done.stderr
