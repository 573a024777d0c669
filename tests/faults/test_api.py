"""The API under abuse, on the real worker: 64 concurrent SSE clients (slow
readers and clients that vanish mid-stream among them), schemathesis over the
served OpenAPI document, and writes that must be refused (no key, a wrong key,
over the rate limit) without anything reaching Kafka.

The module's worker runs with a rate limit high enough never to refuse the load
(the SSE clients share one address, and schemathesis one key). The 429 case
needs the opposite, so it restarts this module's worker (same topics, same
stores) with a burst of 2 that refills once a minute, and puts the module's
settings back after: one worker per module, and a 429 that does not depend on
outrunning a refill rate on two busy cores."""

from __future__ import annotations

import random
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from core.kafka.config import client_config
from tests.faults.conftest import Verdict
from tests.integration import test_openapi_fuzz as fuzz
from tests.integration.conftest import TEST_API_KEY, Pipeline
from tests.integration.helpers import eventually, metric, read_all
from tests.integration.test_sse import stream

pytestmark = pytest.mark.faults
PIPELINE_ENV = {
    # 64 clients connect at once from one address: the burst must admit them all.
    "DOCSTREAM_RATE_LIMIT_PER_S": "2000",
    "DOCSTREAM_RATE_LIMIT_BURST": "500",
}
CLIENTS = 64
LOAD_S = 60.0
SLOW_SLEEP_S = 2.0
FUZZ_EXAMPLES = 60  # the integration run uses 25
# (c): a bucket of 2 that refills once a minute, so the 429 cannot race a refill.
RATE_PER_S = 1 / 60
BURST = 2
WORDS = [
    *("harbour", "lantern", "ferry", "fjord", "glacier", "orchard", "copper", "kettle"),
    *("saffron", "meadow", "lighthouse", "compass", "tide", "beacon", "granite"),
    *("willow", "falcon", "ember", "quartz", "marsh"),
]


def indexed(pipeline: Pipeline, doc_id: str) -> bool:
    found = httpx.get(f"{pipeline.base_url}/documents/{doc_id}").json()
    return bool(found.get("status") == "indexed")


@pytest.fixture(scope="module")
def corpus(pipeline: Pipeline, run_id: str) -> list[str]:
    """Twenty short documents, indexed before any load starts."""
    body = [
        {
            "doc_id": f"{run_id}-load-{i}",
            "text": f"The {word} near the {WORDS[(i + 3) % 20]} was mapped in survey {i}. "
            f"Keepers of the {WORDS[(i + 7) % 20]} noted the {word} at dusk.",
        }
        for i, word in enumerate(WORDS)
    ]
    response = httpx.post(
        f"{pipeline.base_url}/documents", json=body, headers={"X-API-Key": TEST_API_KEY}
    )
    assert response.status_code == 202, response.text
    for doc in body:
        eventually(partial(indexed, pipeline, doc["doc_id"]), f"{doc['doc_id']} indexed", 240)
    return [d["doc_id"] for d in body]


# (b) 64 concurrent SSE clients ----------------------------------------------


@dataclass
class Tally:
    """What one client saw. An error is a non-200, a transport failure, or a
    stream read to its end without `done`; leaving on purpose is not one."""

    completed: int = 0
    abandoned: int = 0
    degraded: Counter[str] = field(default_factory=Counter)  # store:reason → events
    errors: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.completed += other.completed
        self.abandoned += other.abandoned
        self.degraded.update(other.degraded)
        self.errors.update(other.errors)


def one_query(pipeline: Pipeline, kind: str, tally: Tally) -> None:
    """`full` reads to the end; `slow` reads one event, sleeps, reads on;
    `vanish` reads one event and closes the socket mid-stream."""
    params = {"q": " ".join(random.sample(WORDS, 3)), "k": 5, "expand": 2}
    with stream(pipeline, **params) as source:
        first = next(source)
        if kind == "vanish":
            tally.abandoned += 1
            return  # leaving both blocks closes the connection
        if kind == "slow":
            time.sleep(SLOW_SLEEP_S)
        seen = [first, *source]
    events = [f.kind for f in seen if f.kind != "comment"]
    tally.degraded.update(
        f"{f.data['store']}:{f.data['reason']}" for f in seen if f.kind == "degraded"
    )
    if events[:1] == ["meta"] and events[-1:] == ["done"]:
        tally.completed += 1
    else:
        tally.errors[f"no done: {events[-3:]}"] += 1


def client_loop(pipeline: Pipeline, kind: str, deadline: float) -> Tally:
    tally = Tally()
    while time.monotonic() < deadline:
        try:
            one_query(pipeline, kind, tally)
        except AssertionError as exc:  # `stream` asserts a 200 event stream
            tally.errors[str(exc).splitlines()[0][:80]] += 1
        except httpx.HTTPError as exc:
            tally.errors[type(exc).__name__] += 1
    return tally


def server_errors(pipeline: Pipeline) -> int:
    """5xx answers the worker counted so far, on any route."""
    families = text_string_to_metric_families(httpx.get(f"{pipeline.base_url}/metrics").text)
    return sum(
        int(sample.value)
        for family in families
        for sample in family.samples
        if sample.name == "docstream_http_requests_total"
        and sample.labels.get("status", "").startswith("5")
    )


def test_64_sse_clients_with_slow_and_vanishing_readers(
    pipeline: Pipeline, corpus: list[str], verdict: list[Verdict]
) -> None:
    """Half read whole streams, a quarter are slow, a quarter vanish: no errors,
    and the in-flight gauge is back to 0 after (no leaked query task)."""
    kinds = ["full"] * (CLIENTS // 2) + ["slow"] * (CLIENTS // 4) + ["vanish"] * (CLIENTS // 4)
    errors_before = server_errors(pipeline)
    cancelled_before = metric(pipeline, "docstream_query_cancelled_total")
    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(client_loop, pipeline, k, started + LOAD_S) for k in kinds]
        total = Tally()
        for future in futures:
            total.add(future.result())
    elapsed = time.monotonic() - started
    settled = eventually(
        lambda: metric(pipeline, "docstream_queries_in_flight") == 0 and time.monotonic() - started,
        "no query in flight after the load",
        timeout_s=30,
    )
    five_xx = server_errors(pipeline) - errors_before
    cancelled = metric(pipeline, "docstream_query_cancelled_total") - cancelled_before
    verdict.append(
        Verdict(
            scenario="api-sse-load",
            load=f"{CLIENTS} SSE clients for {LOAD_S:.0f}s (32 full, 16 slow, 16 vanishing)",
            fault="slow readers and clients closing mid-stream",
            lost=0,
            duplicated=0,
            recovered_s=float(settled) - elapsed,
            details={
                "completed": total.completed,
                "abandoned": total.abandoned,
                "cancelled_server_side": int(cancelled),
                "degraded_events": ",".join(f"{k}={n}" for k, n in total.degraded.items()) or 0,
                "errors": sum(total.errors.values()),
                "http_5xx": int(five_xx),
                "in_flight_after": int(metric(pipeline, "docstream_queries_in_flight")),
            },
        )
    )
    assert not total.errors, dict(total.errors)
    assert five_xx == 0
    assert total.completed > 0 and total.abandoned > 0


# (a) schemathesis -------------------------------------------------------------


def test_schemathesis_finds_no_server_error(
    pipeline: Pipeline,
    corpus: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    verdict: list[Verdict],
) -> None:
    """The integration test's own schemathesis run (same CLI, checks, key),
    with more examples per operation, on a worker that holds a corpus."""
    monkeypatch.setattr(fuzz, "MAX_EXAMPLES", FUZZ_EXAMPLES)
    errors_before = server_errors(pipeline)
    started = time.monotonic()
    failure = ""
    try:
        fuzz.test_no_generated_request_gets_a_server_error(pipeline, tmp_path)
    except AssertionError as exc:
        failure = str(exc)[-3000:]
    report = tmp_path / "schemathesis.xml"
    cases = ET.parse(report).getroot().iter("testcase") if report.exists() else iter(())
    failed = [c.get("name", "") for c in cases if c.find("failure") is not None]
    verdict.append(
        Verdict(
            scenario="api-schemathesis",
            load=f"schemathesis, {FUZZ_EXAMPLES} examples per operation",
            fault="generated valid and invalid requests",
            lost=0,
            duplicated=0,
            recovered_s=None,
            details={
                "operations_failed": len(failed),
                "server_errors": server_errors(pipeline) - errors_before,
                "took_s": round(time.monotonic() - started),
            },
        )
    )
    assert not failure, failure


# (c) refused writes -------------------------------------------------------------


def end_offsets(pipeline: Pipeline) -> dict[int, int]:
    """The documents topic's high watermark per partition: what was ever written."""
    topic = pipeline.settings.kafka.topics.documents
    consumer = Consumer(
        client_config(pipeline.settings.kafka, **{"group.id": f"offsets-{uuid.uuid4().hex}"})
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
    finally:
        consumer.close()


@contextmanager
def rate_limited(pipeline: Pipeline, per_s: float, burst: int) -> Iterator[None]:
    """This module's worker, restarted with a low rate limit for the block;
    restarted with the module's settings after."""
    saved = dict(pipeline.env)
    pipeline.stop()
    pipeline.env.update(
        {"DOCSTREAM_RATE_LIMIT_PER_S": str(per_s), "DOCSTREAM_RATE_LIMIT_BURST": str(burst)}
    )
    pipeline.start()
    try:
        yield
    finally:
        pipeline.stop()
        pipeline.env.clear()
        pipeline.env.update(saved)
        pipeline.start()


def write(pipeline: Pipeline, doc_id: str, headers: dict[str, str]) -> httpx.Response:
    doc = {"doc_id": doc_id, "text": "This write must never reach the documents topic."}
    return httpx.post(f"{pipeline.base_url}/documents", json=doc, headers=headers, timeout=30)


def refused_writes(pipeline: Pipeline, run_id: str) -> dict[str, httpx.Response]:
    """No key, a wrong key (both forms), and a valid key over the rate limit
    (its bucket drained first with reads, so no write of ours goes through)."""
    answers = {
        f"{run_id}-nokey": write(pipeline, f"{run_id}-nokey", {}),
        f"{run_id}-wrongkey": write(pipeline, f"{run_id}-wrongkey", {"X-API-Key": "wrong-1"}),
        f"{run_id}-wrongbearer": write(
            pipeline, f"{run_id}-wrongbearer", {"Authorization": "Bearer wrong-2"}
        ),
    }
    key = {"X-API-Key": TEST_API_KEY}
    drained = [
        httpx.get(f"{pipeline.base_url}/documents/{run_id}-drain", headers=key).status_code
        for _ in range(BURST + 1)
    ]
    assert drained[-1] == 429, f"the bucket of {BURST} did not run dry: {drained}"
    for n in range(3):
        answers[f"{run_id}-limited-{n}"] = write(pipeline, f"{run_id}-limited-{n}", key)
    return answers


def test_writes_without_a_valid_key_or_over_the_limit_write_nothing(
    pipeline: Pipeline, run_id: str, verdict: list[Verdict]
) -> None:
    """401, 401 (X-API-Key and Bearer) and 429 with Retry-After; the topic's
    end offsets do not move and none of the doc ids is ever seen."""
    started = time.monotonic()
    topic = pipeline.settings.kafka.topics.documents
    with rate_limited(pipeline, per_s=RATE_PER_S, burst=BURST):
        before = end_offsets(pipeline)
        answers = refused_writes(pipeline, run_id)
        time.sleep(3)  # anything accepted by mistake would be acknowledged by now
        after = end_offsets(pipeline)
        keys = {m.key() for m in read_all(pipeline.settings.kafka, topic)}
    codes = {d.removeprefix(f"{run_id}-"): r.status_code for d, r in answers.items()}
    limited = [r for d, r in answers.items() if "limited" in d]
    written = sum(after.values()) - sum(before.values())
    verdict.append(
        Verdict(
            scenario="api-refused-writes",
            load="3 unauthenticated writes, 3 writes over a 2-request burst",
            fault="no key, wrong key, wrong bearer, rate limit",
            lost=0,
            duplicated=0,
            recovered_s=None,
            details={
                "codes": ",".join(str(c) for c in codes.values()),
                "retry_after": ",".join(r.headers.get("retry-after", "-") for r in limited),
                "events_written": written,
                "took_s": round(time.monotonic() - started),
            },
        )
    )
    assert [codes[k] for k in ("nokey", "wrongkey", "wrongbearer")] == [401, 401, 401], codes
    assert [r.status_code for r in limited] == [429, 429, 429], codes
    assert all(int(r.headers["retry-after"]) >= 1 for r in limited)
    assert written == 0, (before, after)
    assert not keys & {d.encode() for d in answers}, "a refused doc id is on the topic"
