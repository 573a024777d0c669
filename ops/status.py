"""The operator's view of a running pipeline, for `docstream status` and
GET /admin/status: brokers, topics (partitions, offsets), the lag of each
stage's consumer group, breaker states and freshness percentiles from the
worker's metrics, and how much each store holds.

Each part is a probe that answers on its own within a timeout: one that fails
(a store down, no worker running) is reported as such and the rest still is.
(Not `api/status.py`, which says where one document stands.)"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import OffsetSpec
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from core.kafka.admin import admin_client
from core.settings import KafkaSettings, Settings
from core.types import Generations
from sinks.neo4j.generations import GraphGenerations
from sinks.neo4j.store import Neo4jGraphStore
from sinks.qdrant.generations import QdrantGenerations
from sinks.qdrant.server import QdrantVectorStore

Probe = Callable[[], Awaitable[dict[str, Any]]]
QUANTILES = (0.5, 0.95, 0.99)
NODE_LABELS = ("Document", "Chunk", "Entity")


async def collect(probes: Mapping[str, Probe], timeout_s: float = 5.0) -> dict[str, Any]:
    """Every probe at once; each failure becomes `{"error": …}` in its own section."""
    names = list(probes)
    results = await asyncio.gather(
        *(asyncio.wait_for(probes[n](), timeout_s) for n in names), return_exceptions=True
    )
    report: dict[str, Any] = {"at": datetime.now(UTC).isoformat(timespec="seconds")}
    for name, result in zip(names, results, strict=True):
        if isinstance(result, BaseException):
            detail = str(result) or "no answer in time"
            report[name] = {"error": f"{type(result).__name__}: {detail}"}
        else:
            report[name] = result
    return report


@dataclass(frozen=True)
class Stage:
    name: str
    group: str
    topic: str


def stage_groups(settings: KafkaSettings) -> list[Stage]:
    """The consumer group of each stage (streams/app.py): the chunker is the Faust
    app's own group, the embedder and each sink have `<group>.<name>`."""
    topics, group = settings.topics, settings.group_id
    return [
        Stage("chunker", group, topics.documents),
        Stage("embedder", f"{group}.embedder", topics.chunks),
        Stage("qdrant-sink", f"{group}.qdrant-sink", topics.chunks_embedded),
        Stage("neo4j-sink", f"{group}.neo4j-sink", topics.chunks_embedded),
    ]


def lag(bounds: Mapping[int, tuple[int, int]], committed: Mapping[int, int]) -> dict[str, Any]:
    """Records each partition still has to give a group. A partition the group has
    never committed owes everything still there (it starts from the earliest)."""
    per_partition = {}
    for partition, (first, end) in bounds.items():
        position = committed.get(partition, -1)
        per_partition[partition] = max(0, end - (position if position >= 0 else first))
    return {"lag": sum(per_partition.values()), "partitions": per_partition}


class KafkaProbe:
    def __init__(self, settings: KafkaSettings, timeout_s: float = 5.0) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self.admin = admin_client(settings.bootstrap_servers)

    async def __call__(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.snapshot)

    def topic_names(self, existing: Iterable[str]) -> list[str]:
        """The pipeline's topics, its state changelog and the redrive ledgers."""
        known = set(self.settings.topics.all())
        known.add(f"{self.settings.group_id}-document_state-changelog")
        known |= {f"{t}.redriven" for t in self.settings.topics.all() if t.endswith(".dlq")}
        return sorted(known & set(existing))

    def snapshot(self) -> dict[str, Any]:
        metadata = self.admin.list_topics(timeout=self.timeout_s)
        names = self.topic_names(metadata.topics)
        bounds = self._bounds({n: list(metadata.topics[n].partitions) for n in names})
        return {
            "bootstrap": self.settings.bootstrap_servers,
            "brokers": [f"{b.id}@{b.host}:{b.port}" for b in metadata.brokers.values()],
            "topics": {
                name: {
                    "partitions": len(bounds[name]),
                    "records": sum(end - first for first, end in bounds[name].values()),
                    "end_offsets": {p: end for p, (_, end) in sorted(bounds[name].items())},
                }
                for name in names
            },
            "missing_topics": sorted(set(self.settings.topics.all()) - set(names)),
            "groups": {
                s.name: {"group": s.group, "topic": s.topic, **self._lag(s, bounds)}
                for s in stage_groups(self.settings)
                if s.topic in bounds
            },
        }

    def _bounds(self, partitions: Mapping[str, list[int]]) -> dict[str, dict[int, tuple[int, int]]]:
        def offsets(spec: OffsetSpec) -> dict[tuple[str, int], int]:
            wanted = {TopicPartition(t, p): spec for t, ps in partitions.items() for p in ps}
            if not wanted:
                return {}
            futures = self.admin.list_offsets(wanted, request_timeout=self.timeout_s)
            return {
                (tp.topic, tp.partition): f.result(self.timeout_s).offset
                for tp, f in futures.items()
            }

        first, end = offsets(OffsetSpec.earliest()), offsets(OffsetSpec.latest())
        return {t: {p: (first[(t, p)], end[(t, p)]) for p in ps} for t, ps in partitions.items()}

    def _lag(
        self, stage: Stage, bounds: Mapping[str, Mapping[int, tuple[int, int]]]
    ) -> dict[str, Any]:
        wanted = [TopicPartition(stage.topic, p) for p in bounds[stage.topic]]
        request = [ConsumerGroupTopicPartitions(stage.group, wanted)]
        future = self.admin.list_consumer_group_offsets(request, request_timeout=self.timeout_s)
        answer = future[stage.group].result(self.timeout_s)
        committed = {tp.partition: tp.offset for tp in answer.topic_partitions}
        return lag(bounds[stage.topic], committed)


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """Prometheus' histogram_quantile over cumulative (upper bound, count) buckets:
    linear within the bucket the rank falls in; the highest finite bound when it
    falls in +Inf; None with no observations."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in ordered:
        if count >= rank:
            if math.isinf(upper):
                return lower
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


def pipeline_metrics(text: str) -> dict[str, Any]:
    """Breakers, sinks, paused consumers, events and freshness from Prometheus text."""
    breakers: dict[str, str] = {}
    sinks_up: dict[str, bool] = {}
    blocked: dict[str, str] = {}  # sink → the reason it waits on the operator for
    paused: dict[str, bool] = {}
    events: dict[str, dict[str, float]] = {}
    buckets: dict[str, list[tuple[float, float]]] = {}
    profile: dict[str, Any] | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels, value = sample.labels, sample.value
            if sample.name == "docstream_breaker_open":
                breakers[labels["sink"]] = "open" if value else "closed"
            elif sample.name == "docstream_sink_up":
                sinks_up[labels["sink"]] = bool(value)
            elif sample.name == "docstream_sink_blocked" and value:
                blocked[labels["sink"]] = labels["reason"]
            elif sample.name == "docstream_consumer_paused":
                paused[labels["stage"]] = bool(value)
            elif sample.name == "docstream_events_total":
                events.setdefault(labels["stage"], {})[labels["outcome"]] = value
            elif sample.name == "docstream_profile" and value:
                profile = {**labels, "configured": labels["configured"] == "true"}
            elif sample.name == "docstream_freshness_seconds_bucket":
                buckets.setdefault(labels["sink"], []).append((float(labels["le"]), value))
    freshness = {
        sink: {
            "count": int(max(c for _, c in series)),
            **{f"p{round(q * 100)}": histogram_quantile(q, series) for q in QUANTILES},
        }
        for sink, series in buckets.items()
    }
    return {
        "breakers": breakers,
        "sinks_up": sinks_up,
        "sinks_blocked": blocked,
        "consumers_paused": paused,
        "events": events,
        "freshness_s": freshness,
        "profile": profile,
    }


async def local_metrics() -> dict[str, Any]:
    """This process's own metrics: in the worker, the pipeline's."""
    return {"source": "in-process", **pipeline_metrics(generate_latest().decode())}


async def remote_metrics(url: str, timeout_s: float = 3.0) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        response = await client.get(url)
        response.raise_for_status()
    return {"source": url, **pipeline_metrics(response.text)}


async def index_counts(location: str, generations: Generations) -> dict[str, Any]:
    """An index's live generation and its size, and the one a rebuild is
    filling, if any (`docstream rebuild`)."""
    state = await generations.state()
    report: dict[str, Any] = {
        "location": location,
        "active": state.active,
        **await generations.size(state.active),
        "building": state.building,
    }
    if state.building is not None:
        report["building_size"] = await generations.size(state.building)
    return report


Index = tuple[str, Generations]  # where it is, and its generations


def worker_status(
    settings: Settings, indexes: Mapping[str, Index], timeout_s: float = 5.0
) -> Probe:
    """The provider of GET /admin/status in the worker (or API) process."""
    probes: dict[str, Probe] = {
        "kafka": KafkaProbe(settings.kafka, timeout_s),
        "pipeline": local_metrics,
        **{name: partial(index_counts, *index) for name, index in indexes.items()},
    }
    return partial(collect, probes, timeout_s)


def api_base(settings: Settings) -> str:
    host = settings.api.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{host}:{settings.api.port}"


async def cli_status(
    settings: Settings, metrics_url: str | None, api_key: str | None, timeout_s: float = 5.0
) -> dict[str, Any]:
    """`docstream status`: Kafka and Neo4j asked directly, the pipeline through the
    worker's /metrics; an embedded Qdrant belongs to the worker process, so its
    count comes from the worker's /admin/status."""
    graph = Neo4jGraphStore(settings.neo4j)
    probes: dict[str, Probe] = {
        "kafka": KafkaProbe(settings.kafka, timeout_s),
        "pipeline": partial(remote_metrics, metrics_url or f"{api_base(settings)}/metrics"),
        "neo4j": partial(
            index_counts,
            settings.neo4j.uri,
            GraphGenerations(graph),
        ),
    }
    key = api_key or min(settings.api.api_keys, default="")
    vectors = None
    if settings.qdrant.embedded:
        probes["qdrant"] = partial(_qdrant_from_worker, api_base(settings), key, timeout_s)
    else:
        vectors = QdrantVectorStore(settings.qdrant, dimension=0)
        probes["qdrant"] = partial(index_counts, vectors.location, QdrantGenerations(vectors))
    try:
        return await collect(probes, timeout_s)
    finally:
        await graph.close()
        if vectors is not None:
            await vectors.close()


async def _qdrant_from_worker(base: str, key: str, timeout_s: float) -> dict[str, Any]:
    if not key:
        raise PermissionError("embedded Qdrant: ask the worker's /admin/status with --api-key")
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        response = await client.get(f"{base}/admin/status", headers={"X-API-Key": key})
        response.raise_for_status()
    section: dict[str, Any] = response.json()["qdrant"]
    return section


def render(report: Mapping[str, Any]) -> str:
    """The report as text, one section after another."""
    lines = [f"docstream status at {report.get('at')}"]
    for name in ("kafka", "pipeline", "qdrant", "neo4j"):
        section = report.get(name, {})
        lines.append(f"\n{name}")
        if "error" in section:
            lines.append(f"  unavailable: {section['error']}")
            continue
        lines += RENDERERS[name](section)
    return "\n".join(lines)


def _kafka_lines(kafka: Mapping[str, Any]) -> list[str]:
    lines = [f"  brokers: {', '.join(kafka['brokers']) or 'none'}"]
    for name, topic in kafka["topics"].items():
        ends = ",".join(str(e) for e in topic["end_offsets"].values())
        lines.append(
            f"  {name:<48} partitions {topic['partitions']:<3} records {topic['records']:<8} "
            f"end offsets {ends}"
        )
    lines += [f"  {name:<48} missing" for name in kafka["missing_topics"]]
    for stage, group in kafka["groups"].items():
        lines.append(f"  lag {stage:<12} {group['group']:<36} {group['lag']}")
    return lines


def _pipeline_lines(metrics: Mapping[str, Any]) -> list[str]:
    lines = [f"  metrics from {metrics['source']}"]
    breakers = ", ".join(f"{k} {v}" for k, v in sorted(metrics["breakers"].items()))
    lines.append(f"  breakers: {breakers or 'none seen'}")
    for sink, reason in sorted(metrics["sinks_blocked"].items()):
        lines.append(f"  {sink}: blocked: {reason} — the operator must fix it")
    paused = [k for k, v in metrics["consumers_paused"].items() if v]
    lines.append(f"  paused consumers: {', '.join(paused) or 'none'}")
    for sink, f in sorted(metrics["freshness_s"].items()):
        cuts = " ".join(f"{k} {_seconds(v)}" for k, v in f.items() if k != "count")
        lines.append(f"  freshness {sink}: {cuts} (n={f['count']})")
    for stage, outcomes in sorted(metrics["events"].items()):
        counts = ", ".join(f"{k} {int(v)}" for k, v in sorted(outcomes.items()))
        lines.append(f"  events {stage}: {counts}")
    if profile := metrics.get("profile"):
        note = "" if profile["configured"] else " (a replay's: not yet the configured one)"
        lines.append(
            f"  profile: {profile['model']} max_tokens={profile['max_tokens']} "
            f"overlap_tokens={profile['overlap_tokens']}{note}"
        )
    return lines


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def _index_lines(index: Mapping[str, Any]) -> list[str]:
    sizes = ", ".join(f"{index[k]} {k}" for k in ("chunks", "documents") if k in index)
    lines = [f"  {index['active']}: {sizes} ({index['location']})"]
    if index.get("building"):
        building = index.get("building_size", {})
        lines.append(f"  rebuilding into {index['building']}: {building.get('chunks', 0)} chunks")
    return lines


RENDERERS: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "kafka": _kafka_lines,
    "pipeline": _pipeline_lines,
    "qdrant": _index_lines,
    "neo4j": _index_lines,
}
