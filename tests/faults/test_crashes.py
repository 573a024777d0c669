"""Crashes mid-ingest: the worker SIGKILLed again and again, and the Kafka
broker restarted under a worker that is left alone. Offsets commit only after
a write and every write is an idempotent upsert, so both end with exactly the
corpus's chunks in both stores, once each."""

from __future__ import annotations

import random
import time

import pytest
from neo4j import Driver

from tests.faults.conftest import Verdict
from tests.faults.projection import (
    Comparison,
    Corpus,
    Expected,
    assert_exact,
    compare_stores,
    corpus,
    ensure_running,
    expected_projection,
    neo4j_chunks,
    post_documents,
    wait_until_complete,
)
from tests.integration.conftest import Pipeline
from tests.integration.helpers import eventually
from tools.stack.local import LocalStack

pytestmark = pytest.mark.faults

KILLS = 5
KAFKA_DOWN_S = 15.0


def _compare(pipeline: Pipeline, driver: Driver, expected: Expected) -> Comparison:
    """Stop the worker (the embedded Qdrant is read from disk), then compare."""
    pipeline.stop()
    return compare_stores(pipeline.settings, driver, expected)


def _first_chunks(pipeline: Pipeline, driver: Driver, docs: Corpus) -> int:
    return eventually(
        lambda: len(neo4j_chunks(driver, pipeline.settings, docs.prefix)),
        "the first chunks reached Neo4j",
        180,
    )


def test_worker_sigkilled_five_times_mid_ingest(
    pipeline: Pipeline, run_id: str, neo4j_driver: Driver, verdict: list[Verdict]
) -> None:
    """A wave of documents before each kill, so every kill lands mid-ingest,
    a random 1-8 s after the worker (re)started taking work."""
    ensure_running(pipeline)
    docs = corpus(run_id, "kil", 12 * (KILLS + 1), 8)
    waves = [docs.docs[i :: KILLS + 1] for i in range(KILLS + 1)]
    rng = random.Random(run_id)
    delays = []
    restarts = []
    for wave in waves[:KILLS]:
        post_documents(pipeline, wave)
        delays.append(round(rng.uniform(1.0, 8.0), 1))
        time.sleep(delays[-1])
        pipeline.kill()
        started = time.monotonic()
        pipeline.start()
        restarts.append(time.monotonic() - started)
    post_documents(pipeline, waves[KILLS])
    last_start = time.monotonic()
    expected = expected_projection(pipeline.settings, docs.texts, docs.prefix)
    waited = wait_until_complete(pipeline, neo4j_driver, expected, timeout_s=300)
    recovered = None if waited is None else time.monotonic() - last_start
    result = _compare(pipeline, neo4j_driver, expected)
    verdict.append(
        Verdict(
            "worker-sigkill",
            f"{len(docs.docs)} docs/{len(expected.chunks)} chunks in {KILLS + 1} waves",
            f"worker SIGKILLed {KILLS}x, {min(delays)}-{max(delays)}s after each wave",
            result.lost,
            result.duplicated,
            recovered,
            {**result.details(), "restart_s": round(sum(restarts) / len(restarts), 1)},
        )
    )
    assert_exact(result)


def test_kafka_restarted_mid_ingest(
    pipeline: Pipeline,
    stack: LocalStack,
    run_id: str,
    neo4j_driver: Driver,
    verdict: list[Verdict],
) -> None:
    """The test never restarts the worker: it must ride out the broker's absence."""
    ensure_running(pipeline)
    docs = corpus(run_id, "kaf", 60, 8)
    post_documents(pipeline, docs.docs)
    written = _first_chunks(pipeline, neo4j_driver, docs)
    assert stack.down(only=["kafka"]) == ["kafka"], "this test stops the stack's own Kafka"
    try:
        down_at = time.monotonic()
        expected = expected_projection(pipeline.settings, docs.texts, docs.prefix)
        time.sleep(max(0.0, KAFKA_DOWN_S - (time.monotonic() - down_at)))
    finally:
        stack.start("kafka")
    back_at = time.monotonic()
    assert pipeline.process is not None
    waited = wait_until_complete(pipeline, neo4j_driver, expected, timeout_s=300)
    recovered = None if waited is None else time.monotonic() - back_at
    stayed_up = pipeline.process is not None and pipeline.process.poll() is None
    result = _compare(pipeline, neo4j_driver, expected)
    verdict.append(
        Verdict(
            "kafka-restart",
            f"{len(docs.docs)} docs/{len(expected.chunks)} chunks via POST /documents",
            f"Kafka broker stopped {KAFKA_DOWN_S:.0f}s mid-ingest ({written} chunks in), "
            "then started; worker left alone",
            result.lost,
            result.duplicated,
            recovered,
            {**result.details(), "worker_stayed_up": stayed_up},
        )
    )
    assert stayed_up, f"the worker died with the broker:\n{pipeline.log_tail()}"
    assert_exact(result)
