"""A sink's store goes away for 60 s mid-ingest and comes back: its consumer
pauses (back-pressure), nothing is dead-lettered, and once the store is back
both stores hold exactly the corpus's chunks, once each.

Neo4j is a server of the local stack: it is stopped and started. Qdrant is
embedded in the worker, so its outage is injected at the store interface
(`sinks/faults.py`): the worker of this module runs with
DOCSTREAM_FAULT_QDRANT_WRITES, and its Qdrant sink's writes fail while the flag
file exists (the flag is absent during the Neo4j scenario)."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from neo4j import Driver

from sinks.faults import FAULT_QDRANT_WRITES
from tests.faults.conftest import Verdict
from tests.faults.projection import (
    Corpus,
    Expected,
    compare_stores,
    corpus,
    ensure_running,
    expected_projection,
    neo4j_chunks,
    post_documents,
    wait_until_complete,
)
from tests.faults.projection import assert_exact as assert_projection_exact
from tests.integration.conftest import Pipeline
from tests.integration.helpers import eventually, metric
from tests.integration.test_resilience import dead_letters_of
from tools.stack.local import LocalStack

pytestmark = pytest.mark.faults

OUTAGE_S = 60.0
DOCUMENTS, SENTENCES = 60, 8  # about 420 chunks: ingest outlasts the fault's start
FLAG = Path(tempfile.gettempdir()) / f"docstream-faults-{os.getpid()}-qdrant-writes.flag"
PIPELINE_ENV = {FAULT_QDRANT_WRITES: str(FLAG)}


class Sampler(threading.Thread):
    """Samples a stage's back-pressure gauges every second in the background,
    while the test thread does slow work (computing the expected projection)."""

    def __init__(self, pipeline: Pipeline, stage: str) -> None:
        super().__init__(daemon=True)
        self.pipeline, self.stage = pipeline, stage
        self.seen = {"paused": 0.0, "breaker_open": 0.0}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(1.0):
            try:
                paused = metric(self.pipeline, "docstream_consumer_paused", stage=self.stage)
                opened = metric(self.pipeline, "docstream_breaker_open", sink=self.stage)
            except Exception:  # a scrape that fails mid-outage is not the test's subject
                continue
            self.seen["paused"] = max(self.seen["paused"], paused)
            self.seen["breaker_open"] = max(self.seen["breaker_open"], opened)


def _outage(pipeline: Pipeline, stage: str, corpus_: Corpus) -> tuple[Expected, dict[str, float]]:
    """Hold the fault for OUTAGE_S, sampling the stage's gauges, and compute the
    expected projection meanwhile."""
    deadline = time.monotonic() + OUTAGE_S
    sampler = Sampler(pipeline, stage)
    sampler.start()
    expected = expected_projection(pipeline.settings, corpus_.texts, corpus_.prefix)
    time.sleep(max(0.0, deadline - time.monotonic()))
    sampler.stopping.set()
    sampler.join()
    return expected, sampler.seen


def _qdrant_written(pipeline: Pipeline) -> int:
    """Chunks the Qdrant sink has written since the worker started: one scrape."""
    return int(metric(pipeline, "docstream_events_total", stage="qdrant-sink", outcome="ok"))


def _started(pipeline: Pipeline, run_id: str, tag: str) -> Corpus:
    ensure_running(pipeline)
    docs = corpus(run_id, tag, DOCUMENTS, SENTENCES)
    post_documents(pipeline, docs.docs)
    return docs


def _finish(
    pipeline: Pipeline,
    driver: Driver,
    docs: Corpus,
    expected: Expected,
    back_at: float,
    record: Callable[[int, int, float | None, dict[str, object]], None],
) -> None:
    """Wait for the projection, stop the worker (Qdrant is read from disk),
    compare, record the verdict, then assert."""
    waited = wait_until_complete(pipeline, driver, expected, timeout_s=240)
    recovered = None if waited is None else time.monotonic() - back_at
    letters = dead_letters_of(pipeline, docs.doc_ids)
    pipeline.stop()
    result = compare_stores(pipeline.settings, driver, expected)
    record(result.lost, result.duplicated, recovered, {**result.details(), "dlq": len(letters)})
    assert_projection_exact(result)
    assert letters == [], "an outage is never a dead letter"


def test_neo4j_stopped_60s_mid_ingest(
    pipeline: Pipeline,
    stack: LocalStack,
    run_id: str,
    neo4j_driver: Driver,
    verdict: list[Verdict],
) -> None:
    docs = _started(pipeline, run_id, "neo")
    written = eventually(
        lambda: len(neo4j_chunks(neo4j_driver, pipeline.settings, docs.prefix)),
        "the first chunks reached Neo4j",
        180,
    )
    assert stack.down(only=["neo4j"]) == ["neo4j"], "this test stops the stack's own Neo4j"
    try:
        expected, seen = _outage(pipeline, "neo4j-sink", docs)
    finally:
        stack.start("neo4j")
    back_at = time.monotonic()
    assert written < len(expected.chunks), "ingest was over before the fault: add load"

    def record(lost: int, dup: int, recovered: float | None, details: dict[str, object]) -> None:
        verdict.append(
            Verdict(
                "neo4j-outage",
                f"{DOCUMENTS} docs/{len(expected.chunks)} chunks via POST /documents",
                f"Neo4j stopped {OUTAGE_S:.0f}s mid-ingest ({written} chunks in)",
                lost,
                dup,
                recovered,
                {**details, **seen},
            )
        )

    _finish(pipeline, neo4j_driver, docs, expected, back_at, record)
    assert seen["paused"] == 1, "the Neo4j sink's consumer paused during the outage"


def test_qdrant_writes_failing_60s_mid_ingest(
    pipeline: Pipeline, run_id: str, neo4j_driver: Driver, verdict: list[Verdict]
) -> None:
    FLAG.unlink(missing_ok=True)
    ensure_running(pipeline)
    before = _qdrant_written(pipeline)
    docs = _started(pipeline, run_id, "qdr")

    def points_in() -> int:
        return _qdrant_written(pipeline) - before

    written = eventually(points_in, "the first points reached Qdrant", 180)
    FLAG.touch()
    try:
        expected, seen = _outage(pipeline, "qdrant-sink", docs)
    finally:
        FLAG.unlink(missing_ok=True)
    back_at = time.monotonic()
    assert written < len(expected.chunks), "ingest was over before the fault: add load"

    def record(lost: int, dup: int, recovered: float | None, details: dict[str, object]) -> None:
        verdict.append(
            Verdict(
                "qdrant-write-outage",
                f"{DOCUMENTS} docs/{len(expected.chunks)} chunks via POST /documents",
                f"embedded Qdrant writes failing {OUTAGE_S:.0f}s mid-ingest ({written}+ points in)",
                lost,
                dup,
                recovered,
                {**details, **seen},
            )
        )

    _finish(pipeline, neo4j_driver, docs, expected, back_at, record)
    assert seen["paused"] == 1, "the Qdrant sink's consumer paused during the outage"
