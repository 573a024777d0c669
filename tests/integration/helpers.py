"""Helpers for integration tests: real clients reading real services."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import qdrant_edge as edge
from confluent_kafka import Consumer, TopicPartition
from httpx_sse import connect_sse
from prometheus_client.parser import text_string_to_metric_families
from qdrant_client import QdrantClient

from core.kafka.config import client_config
from core.settings import KafkaSettings, QdrantSettings
from sinks.qdrant.server import server_options
from tests.integration.conftest import Pipeline

T = TypeVar("T")


def sse_query(pipeline: Pipeline, text: str, k: int = 5) -> list[tuple[str, dict[str, Any]]]:
    with (
        httpx.Client(base_url=pipeline.base_url, timeout=30) as client,
        connect_sse(client, "GET", "/query", params={"q": text, "k": k}) as source,
    ):
        return [(event.event, json.loads(event.data)) for event in source.iter_sse()]


def wait_for_doc(
    pipeline: Pipeline, doc_id: str, text: str, timeout_s: float = 180
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        hits = [data for kind, data in sse_query(pipeline, text) if kind == "hit"]
        if any(h["doc_id"] == doc_id for h in hits):
            return hits
        time.sleep(1)
    raise AssertionError(f"{doc_id} not searchable after {timeout_s}s:\n{pipeline.log_tail()}")


def eventually(check: Callable[[], T | None], what: str, timeout_s: float = 120) -> T:
    """The two sinks are independent consumers: one store may lag the other."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1)
    raise AssertionError(f"not true after {timeout_s}s: {what}")


def read_topic(kafka: KafkaSettings, topic: str, expect: int, timeout_s: float = 30) -> list[Any]:
    consumer = Consumer(
        client_config(
            kafka,
            **{
                "group.id": f"reader-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            },
        )
    )
    consumer.subscribe([topic])
    messages: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(messages) < expect and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                messages.append(message)
    finally:
        consumer.close()
    return messages


def read_all(kafka: KafkaSettings, topic: str, timeout_s: float = 30) -> list[Any]:
    """Every message on a topic now, up to each partition's high watermark."""
    consumer = Consumer(
        client_config(
            kafka, **{"group.id": f"reader-{uuid.uuid4().hex}", "enable.auto.commit": False}
        )
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in metadata.partitions
        }
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        remaining = {p for p, end in ends.items() if end > 0}
        messages: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while remaining and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            messages.append(message)
            partition, offset = message.partition(), message.offset()
            if partition is not None and offset is not None and offset + 1 >= ends[partition]:
                remaining.discard(partition)
        return messages
    finally:
        consumer.close()


def metric(pipeline: Pipeline, name: str, **labels: str) -> float:
    """One sample of the worker's /metrics (0 when it has not been seen yet)."""
    text = httpx.get(f"{pipeline.base_url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


@dataclass(frozen=True)
class StoredIndex:
    """What a Qdrant holds: an embedded one read from disk after the worker
    stopped (it admits one process at a time), a server at any time."""

    active: str  # the generation queries use
    generations: list[str]  # every generation still there
    points: dict[str, dict[str, Any]]  # point id → payload, of the active one
    # A server's active generation has its HNSW graph configured (m > 0): a
    # rebuild creates it with m = 0 and must build it before the switch. None
    # for the embedded engines, which index as they write.
    graph_built: bool | None = None


def server_store_settings(url: str) -> QdrantSettings:
    """A collection (alias) of the test's own on the session's server: the
    server outlives the test, and other tests share it."""
    return QdrantSettings(url=url, collection=f"it_{uuid.uuid4().hex[:12]}")


def stored_index(qdrant: QdrantSettings) -> StoredIndex:
    if not qdrant.embedded:
        return _server_index(qdrant)
    if qdrant.engine == "edge":
        root = qdrant.path / "edge"
        active = (root / f"{qdrant.collection}.active").read_text().strip()
        shard = edge.EdgeShard.load(str(root / active))
        try:
            records, _ = shard.scroll(edge.ScrollRequest(limit=100_000, with_payload=True))
        finally:
            shard.close()
        generations = sorted(p.name for p in root.iterdir() if p.is_dir())
        return StoredIndex(active, generations, {str(r.id): r.payload or {} for r in records})
    client = QdrantClient(path=str(qdrant.path))
    try:
        aliases = client.get_aliases().aliases
        active = next(a.collection_name for a in aliases if a.alias_name == qdrant.collection)
        generations = sorted(c.name for c in client.get_collections().collections)
        points, _ = client.scroll(active, limit=100_000, with_payload=True)
    finally:
        client.close()
    return StoredIndex(active, generations, {str(p.id): p.payload or {} for p in points})


def _server_index(qdrant: QdrantSettings) -> StoredIndex:
    """The alias's collection on a server, and the alias's other generations
    (`<alias>-g<n>`; the server holds other tests' collections too)."""
    client = QdrantClient(url=qdrant.url, **server_options(qdrant))
    alias = qdrant.collection
    try:
        active = next(
            a.collection_name for a in client.get_aliases().aliases if a.alias_name == alias
        )
        names = [c.name for c in client.get_collections().collections]
        generations = sorted(n for n in names if n == alias or n.startswith(f"{alias}-g"))
        points, _ = client.scroll(active, limit=100_000, with_payload=True)
        info = client.get_collection(active)
    finally:
        client.close()
    built = info.config.hnsw_config.m > 0
    return StoredIndex(active, generations, {str(p.id): p.payload or {} for p in points}, built)
