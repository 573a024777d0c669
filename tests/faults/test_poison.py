"""Poison events mixed into good ones, published straight to the documents topic
with a raw producer, as a buggy or hostile producer would (the HTTP intake
would refuse most of them before Kafka).

1,000 poison events of eight kinds among 5,000 good short documents: every
poison event must land in the dead-letter topic with its original bytes and a
reason, every good document must be indexed exactly once in both stores, and
the worker must never restart.

The 20 MB kind is sent the way a compressing producer would send it: zstd
makes the batch small enough for the topic's `max.message.bytes` (the broker
counts compressed bytes), so the worker really receives 20 MB of text. It must
dead-letter it whole (original bytes intact) for exceeding
DOCSTREAM_MAX_TEXT_BYTES, not cut it into tens of thousands of chunks."""

from __future__ import annotations

import io
import json
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from confluent_kafka import KafkaError, Message, Producer
from fastavro import parse_schema, schemaless_writer
from neo4j import Driver
from prometheus_client.parser import text_string_to_metric_families

from core.correlation import event_headers
from core.kafka.config import client_config
from core.settings import KafkaSettings
from schemas.codec import MARKER, codec_for
from schemas.events import now_millis
from tests.faults.conftest import Verdict
from tests.faults.projection import (
    Expected,
    assert_exact,
    compare_stores,
    expected_projection,
    neo4j_chunks,
)
from tests.integration.conftest import Pipeline
from tests.integration.helpers import metric, read_all

pytestmark = pytest.mark.faults
# 5,000 status reads per completeness check, from one address.
PIPELINE_ENV = {"DOCSTREAM_RATE_LIMIT_PER_S": "100000", "DOCSTREAM_RATE_LIMIT_BURST": "100000"}
GOOD = 5000
POISON = 1000
HUGE = 3  # 20 MB texts, zstd-compressed by their producer
HUGE_BYTES = 20 * 1024 * 1024
SYLLABLES = ("ka", "ve", "ri", "to", "ma", "lu", "ze", "no", "pi", "sa", "do", "gu", "fe", "xi")
DOCS = codec_for("DocumentEvent")

Event = tuple[bytes, bytes]  # key, value


def word(n: int) -> str:
    """A made-up word unique to `n`: every good document has its own tokens."""
    letters = ""
    while True:
        n, digit = divmod(n, len(SYLLABLES))
        letters += SYLLABLES[digit]
        if n == 0:
            return letters + "n"


def good_text(i: int) -> str:
    w = [word(i * 4 + k) for k in range(4)]
    return f"Ledger {i} says {w[0]} crossed the {w[1]} river at dawn near {w[2]} with {w[3]}."


def record(doc_id: str, text: str, **fields: Any) -> dict[str, Any]:
    return {"doc_id": doc_id, "version": 1, "text": text, "occurred_at": now_millis(), **fields}


def not_avro(key: str, rng: random.Random) -> bytes:
    value = rng.randbytes(rng.randint(1, 200))
    return b"\x7f" + value if value[:1] in (b"\x00", b"\xc3") else value


def unknown_fingerprint(key: str, rng: random.Random) -> bytes:
    valid = DOCS.encode(record(key, "A document under a schema nobody knows."))
    return MARKER + rng.randbytes(8) + valid[len(MARKER) + 8 :]


def truncated(key: str, rng: random.Random) -> bytes:
    valid = DOCS.encode(record(key, "A document whose tail was cut off in flight."))
    return valid[: rng.randint(len(MARKER) + 9, len(valid) - 1)]


def empty_text(key: str, rng: random.Random) -> bytes:
    return DOCS.encode(record(key, rng.choice(["", " ", "\n\t "])))


def invalid_utf8(key: str, rng: random.Random) -> bytes:
    """A string whose bytes are not UTF-8, spliced in with its length intact."""
    valid = DOCS.encode(record(key, "Before ZQZQ after."))
    return valid.replace(b"ZQZQ", b"\xc3\x28\xa0\xa1")


def _with_purge() -> Any:
    raw = json.loads(DOCS.schema.text)
    raw["fields"][2]["type"]["symbols"].append("PURGE")
    return parse_schema(raw, _write_hint=False)


WRITER_WITH_PURGE = _with_purge()


def unknown_op(key: str, rng: random.Random) -> bytes:
    """Op index 2 (no such symbol) under the real schema's fingerprint."""
    buffer = io.BytesIO(MARKER + DOCS.schema.fingerprint_bytes)
    buffer.seek(0, io.SEEK_END)
    schemaless_writer(buffer, WRITER_WITH_PURGE, record(key, "Purge me.", op="PURGE"))
    return buffer.getvalue()


def negative_version(key: str, rng: random.Random) -> bytes:
    return DOCS.encode(record(key, "A version from before time.", version=-rng.randint(1, 99)))


KINDS: dict[str, Callable[[str, random.Random], bytes]] = {
    f.__name__: f
    for f in (
        not_avro,
        unknown_fingerprint,
        truncated,
        empty_text,
        invalid_utf8,
        unknown_op,
        negative_version,
    )
}


@dataclass
class Corpus:
    good: dict[str, str]  # doc_id → text
    poison: dict[bytes, tuple[str, bytes]]  # key → (kind, value)
    events: list[Event]  # good and poison, shuffled


def build_corpus(run_id: str, seed: int) -> Corpus:
    rng = random.Random(seed)
    good = {f"{run_id}-good-{i:05d}": good_text(i) for i in range(GOOD)}
    poison: dict[bytes, tuple[str, bytes]] = {}
    share, extra = divmod(POISON - HUGE, len(KINDS))
    for k, (kind, make) in enumerate(KINDS.items()):
        for n in range(share + (1 if k < extra else 0)):
            key = f"{run_id}-poison-{kind}-{n:03d}"
            poison[key.encode()] = (kind, make(key, rng))
    events = [(d.encode(), DOCS.encode(record(d, t))) for d, t in good.items()]
    events += [(key, value) for key, (_, value) in poison.items()]
    rng.shuffle(events)
    return Corpus(good, poison, events)


def publish(
    kafka: KafkaSettings, topic: str, events: list[Event], config: dict[str, Any]
) -> list[str]:
    """Produce and wait for every acknowledgement; the errors, one per refused event."""
    errors: list[str] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            errors.append(error.name())

    producer = Producer(client_config(kafka, **{"linger.ms": 20, **config}))
    headers: list[tuple[str, str | bytes | None]] = list(
        event_headers("poison-scenario", "", DOCS.fingerprint_hex)
    )
    for key, value in events:
        while True:
            try:
                producer.produce(topic, value, key, headers=headers, on_delivery=delivered)
                break
            except BufferError:  # the local queue is full: let it drain
                producer.poll(0.5)
        producer.poll(0)
    assert producer.flush(120) == 0, "events still unacknowledged after 120 s"
    return errors


def huge_event(key: str) -> bytes:
    sentence = "This sentence repeats until the document weighs twenty megabytes. "
    return DOCS.encode(record(key, sentence * (HUGE_BYTES // len(sentence) + 1)))


def publish_huge(kafka: KafkaSettings, topic: str, run_id: str) -> dict[bytes, bytes]:
    """HUGE 20 MB documents, zstd-compressed (the client's own limit raised):
    key → the original value the dead letter must carry."""
    events = {f"{run_id}-poison-huge-{n}".encode(): b"" for n in range(HUGE)}
    events = {key: huge_event(key.decode()) for key in events}
    config = {"message.max.bytes": 64 * 1024 * 1024, "compression.type": "zstd"}
    refused = publish(kafka, topic, list(events.items()), config)
    assert not refused, f"the broker refused the compressed 20 MB documents: {refused}"
    return events


def dead_letters(kafka: KafkaSettings, topic: str, keys: set[bytes]) -> dict[bytes, dict[str, Any]]:
    """The dead letters of `keys` on `topic` now, by key (the last one wins)."""
    decode = codec_for("DeadLetter").decode
    letters = (decode(m.value()) for m in read_all(kafka, topic, timeout_s=60))
    return {d["key"]: d for d in letters if d["key"] in keys}


def wait_for_letters(
    kafka: KafkaSettings, topic: str, keys: set[bytes], timeout_s: float
) -> dict[bytes, dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    found = dead_letters(kafka, topic, keys)
    while len(found) < len(keys) and time.monotonic() < deadline:
        time.sleep(5)
        found = dead_letters(kafka, topic, keys)
    return found


def caught_up(pipeline: Pipeline, driver: Driver, expected: Expected) -> bool:
    """A cheap look at completeness while the worker runs (projection's
    `live_complete` reads 5,000 statuses, minutes on two busy cores): Neo4j
    holds every expected chunk once, and the Qdrant sink wrote as many and
    has nothing left to read. The exact check is made from disk after."""
    graph = neo4j_chunks(driver, pipeline.settings, expected.prefix)
    if set(graph) != set(expected.chunks) or any(n != 1 for n in graph.values()):
        return False
    written = metric(pipeline, "docstream_events_total", stage="qdrant-sink", outcome="ok")
    families = text_string_to_metric_families(httpx.get(f"{pipeline.base_url}/metrics").text)
    lag = sum(
        s.value
        for f in families
        for s in f.samples
        if s.name == "docstream_consumer_lag" and s.labels.get("stage") == "qdrant-sink"
    )
    return written >= len(expected.chunks) and lag == 0


def wait_until_indexed(
    pipeline: Pipeline, driver: Driver, expected: Expected, since: float, timeout_s: float
) -> float | None:
    """Seconds from `since` until `caught_up`, or None after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if caught_up(pipeline, driver, expected):
            return time.monotonic() - since
        time.sleep(3)
    return None


def starts(pipeline: Pipeline) -> int:
    """How many times the worker logged that it was starting."""
    lines = pipeline.log_path.read_text(errors="replace").splitlines()
    return sum(1 for line in lines if line.startswith("{") and '"worker starting"' in line)


# 6,000 events through a chunker that waits for Kafka's ack per document, on two
# shared cores, plus the worker's start: more than the suite's default 600 s.
@pytest.mark.timeout(900)
def test_poison_events_are_dead_lettered_and_good_ones_indexed_once(
    pipeline: Pipeline, run_id: str, neo4j_driver: Driver, verdict: list[Verdict]
) -> None:
    kafka = pipeline.settings.kafka
    topic, dlq = kafka.topics.documents, kafka.topics.dead_letter(kafka.topics.documents)
    assert pipeline.process is not None
    pid = pipeline.process.pid
    seed = int.from_bytes(os.urandom(4), "big")
    corpus = build_corpus(run_id, seed)
    expected = expected_projection(pipeline.settings, corpus.good, f"{run_id}-good-")
    started = time.monotonic()
    refused = publish(kafka, topic, corpus.events, {"compression.type": "lz4"})
    assert not refused, Counter(refused)
    huge = publish_huge(kafka, topic, run_id)
    published_s = time.monotonic() - started

    poison_keys = set(corpus.poison) | set(huge)
    letters = wait_for_letters(kafka, dlq, poison_keys, timeout_s=300)
    indexed_s = wait_until_indexed(pipeline, neo4j_driver, expected, started, timeout_s=300)
    alive = pipeline.process is not None and pipeline.process.poll() is None
    same_pid = alive and pipeline.process is not None and pipeline.process.pid == pid
    good_letters = dead_letters(kafka, dlq, {d.encode() for d in corpus.good})
    pipeline.stop()  # the embedded Qdrant admits one process: read it after
    result = compare_stores(pipeline.settings, neo4j_driver, expected)

    per_kind = dead_lettered_per_kind(corpus, letters)
    undelivered = sorted(k.decode() for k in poison_keys - set(letters))
    originals = {**{k: v for k, (_, v) in corpus.poison.items()}, **huge}
    bytes_differ = [k for k, d in letters.items() if d["value"] != originals[k]]
    huge_reasons = [letters[k]["error_message"] for k in huge if k in letters]
    verdict.append(
        Verdict(
            scenario="poison-events",
            load=f"{GOOD} good + {len(corpus.poison)} poison + {HUGE} x 20 MB, raw producer",
            fault="not Avro, unknown fingerprint, truncated, empty text, 20 MB, bad UTF-8, "
            "unknown op, negative version",
            lost=result.lost,
            duplicated=result.duplicated,
            recovered_s=indexed_s,
            details={
                **per_kind,
                "huge_20MB": f"{len(huge_reasons)}/{HUGE}",
                "poison_not_dead_lettered": len(undelivered),
                "good_dead_lettered": len(good_letters),
                **result.details(),
                "worker_restarts": starts(pipeline) - 1 + (0 if same_pid else 1),
                "published_s": round(published_s, 1),
                "seed": seed,
            },
        )
    )
    assert not undelivered, f"poison events not dead-lettered: {undelivered[:10]}"
    assert not bytes_differ, f"dead letters without the original bytes: {bytes_differ[:5]}"
    assert all(d["error_class"] and d["error_message"] for d in letters.values())
    assert all("DOCSTREAM_MAX_TEXT_BYTES" in reason for reason in huge_reasons), huge_reasons
    assert not good_letters, sorted(good_letters)[:10]
    assert same_pid and starts(pipeline) == 1, "the worker restarted"
    assert_exact(result)


def dead_lettered_per_kind(corpus: Corpus, letters: dict[bytes, dict[str, Any]]) -> dict[str, str]:
    """kind → "dead-lettered/published (error classes)", for the verdict."""
    published = Counter(kind for kind, _ in corpus.poison.values())
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    for key, letter in letters.items():
        kind = corpus.poison[key][0] if key in corpus.poison else "huge"
        reasons[kind][letter["error_class"]] += 1
    return {
        kind: f"{sum(reasons[kind].values())}/{count}({'+'.join(sorted(reasons[kind]))})"
        for kind, count in published.items()
    }
