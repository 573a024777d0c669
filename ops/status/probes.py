"""The operator's view of a running pipeline, for `docstream status` and
GET /admin/status: brokers, topics (partitions, offsets), the lag of each
stage's consumer group, breaker states and freshness percentiles from the
worker's metrics, and how much each store holds.

Each part is a probe that answers on its own within a timeout: one that fails
(a store down, no worker running) is reported as such and the rest still is.
(Not `api/status.py`, which says where one document stands.)"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx

from core.kafka.connect import diagnose
from core.kafka.errors import KafkaRefused, KafkaUnavailable
from core.kafka.groups import Group, describe_groups
from core.kafka.offsets import Cluster, Offsets, Replicas
from core.settings import KafkaSettings, Settings
from core.types import Generations
from ops.admin_key import find_api_key
from ops.status.metrics import local_metrics, remote_metrics
from sinks.neo4j.generations import GraphGenerations
from sinks.neo4j.store import Neo4jGraphStore
from sinks.qdrant.generations import QdrantGenerations
from sinks.qdrant.server import QdrantVectorStore

Probe = Callable[[], Awaitable[dict[str, Any]]]
NODE_LABELS = ("Document", "Chunk", "Entity")


async def collect(
    probes: Mapping[str, Probe], timeout_s: float = 5.0, asked: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Every probe at once; each failure becomes `{"error": …}` in its own section,
    with `asked`: what it asked (an address), to say what was unreachable."""
    names = list(probes)
    results = await asyncio.gather(
        *(asyncio.wait_for(probes[n](), timeout_s) for n in names), return_exceptions=True
    )
    report: dict[str, Any] = {"at": datetime.now(UTC).isoformat(timespec="seconds")}
    for name, result in zip(names, results, strict=True):
        if isinstance(result, BaseException):
            detail = str(result) or "no answer in time"
            report[name] = {"error": f"{type(result).__name__}: {detail}"}
            if asked and name in asked:
                report[name]["asked"] = asked[name]
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
        self.offsets = Offsets(settings, timeout_s)
        # Who is in each stage's group (a seam: unit tests answer for the brokers).
        self.describe: Callable[[list[str]], dict[str, Group]] = partial(
            describe_groups, settings, timeout_s=timeout_s
        )

    async def __call__(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.snapshot)

    def topic_names(self, existing: Iterable[str]) -> list[str]:
        """The pipeline's topics, its state changelog and the redrive ledgers."""
        known = set(self.settings.topics.all())
        known.add(f"{self.settings.group_id}-document_state-changelog")
        known |= {f"{t}.redriven" for t in self.settings.topics.all() if t.endswith(".dlq")}
        return sorted(known & set(existing))

    def snapshot(self) -> dict[str, Any]:
        cluster = self._cluster()
        names = self.topic_names(cluster.topics)
        stages = [s for s in stage_groups(self.settings) if s.topic in cluster.topics]
        # Every group's committed offsets first, every end after them. A stage
        # commits only once what it owes downstream is written or acknowledged,
        # so an end read later holds everything a commit read earlier passed on:
        # lag 0 on every stage then means both stores hold everything published
        # before the report. Ends read first would miss the output of a batch
        # that finished between the two reads (its stage at 0 against the old
        # end, the next stage at 0 against an end without that output).
        committed = {
            s.name: self.offsets.committed(s.group, s.topic, cluster.topics[s.topic])
            for s in stages
        }
        bounds = self.offsets.bounds(names)
        members = self.describe([s.group for s in stages])
        groups = {
            s.name: {
                "group": s.group,
                "topic": s.topic,
                **lag(bounds[s.topic], committed[s.name]),
                **_membership(members.get(s.group)),
            }
            for s in stages
            if s.topic in bounds
        }
        return {
            "bootstrap": self.settings.bootstrap_servers,
            # How this client reaches Kafka, in words: never a secret.
            "security": self.settings.security.describe(),
            "brokers": cluster.brokers,
            "topics": {
                name: {
                    "partitions": len(bounds[name]),
                    "records": sum(end - first for first, end in bounds[name].values()),
                    "end_offsets": {p: end for p, (_, end) in sorted(bounds[name].items())},
                    **_replication(cluster.replicas.get(name, {})),
                }
                for name in names
                if name in bounds
            },
            "missing_topics": sorted(set(self.settings.topics.all()) - set(bounds)),
            "groups": groups,
            # Lag 0 on every stage: everything published before this report is in both stores.
            "caught_up": bool(groups) and all(g["lag"] == 0 for g in groups.values()),
        }

    def _cluster(self) -> Cluster:
        """The cluster, or why it cannot be asked: a setting Kafka refuses is
        named (`core/kafka/connect.py`) rather than reported as an outage."""
        try:
            return self.offsets.cluster()
        except KafkaUnavailable as exc:
            verdict = diagnose(self.settings, self.timeout_s)
            if verdict is not None:
                raise KafkaRefused(verdict) from exc
            raise


def _replication(partitions: Mapping[int, Replicas]) -> dict[str, Any]:
    """A topic's copies: its factor, and the partitions short of in-sync
    copies (a broker down or behind) or without a leader (unreadable)."""
    return {
        "replication_factor": max((len(r.replicas) for r in partitions.values()), default=0),
        "under_replicated": [p for p, r in partitions.items() if r.under_replicated],
        "offline": [p for p, r in partitions.items() if r.leader < 0],
        "leaders": {p: r.leader for p, r in partitions.items()},
    }


def _membership(group: Group | None) -> dict[str, Any]:
    """A stage's workers: each member of its group and the partitions it holds."""
    if group is None:
        return {"state": "unknown", "members": []}
    return {
        "state": group.state,
        "members": [
            {"member": m.member_id, "host": m.host, "partitions": m.partitions}
            for m in group.members
        ],
    }


async def index_counts(location: str, generations: Generations) -> dict[str, Any]:
    """An index's live generation and its size, and the one a rebuild is
    filling, if any (`docstream rebuild`)."""
    state = await generations.state()
    report: dict[str, Any] = {
        "location": location,
        "active": state.active,
        **await generations.size(state.active),
        "building": state.building,
        # What made the active generation (`Generations.record_profile`).
        "profile": await generations.profile_of(state.active),
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
    count comes from the worker's /admin/status (with the key `find_api_key` finds)."""
    graph = Neo4jGraphStore(settings.neo4j)
    metrics = metrics_url or f"{api_base(settings)}/metrics"
    probes: dict[str, Probe] = {
        "kafka": KafkaProbe(settings.kafka, timeout_s),
        "pipeline": partial(remote_metrics, metrics),
        "neo4j": partial(
            index_counts,
            settings.neo4j.uri,
            GraphGenerations(graph),
        ),
    }
    asked = {
        "kafka": f"the brokers at {settings.kafka.bootstrap_servers}",
        "pipeline": f"the worker's metrics at {metrics}",
        "neo4j": settings.neo4j.uri,
    }
    vectors = None
    if settings.qdrant.embedded:
        key = find_api_key(api_key, settings)
        probes["qdrant"] = partial(_qdrant_from_worker, api_base(settings), key, timeout_s)
        asked["qdrant"] = f"the worker's /admin/status at {api_base(settings)}"
    else:
        vectors = QdrantVectorStore(settings.qdrant, dimension=0)
        probes["qdrant"] = partial(_qdrant_server, vectors)
        asked["qdrant"] = settings.qdrant.url
    try:
        return await collect(probes, timeout_s, asked)
    finally:
        await graph.close()
        if vectors is not None:
            await vectors.close()


async def _qdrant_server(vectors: QdrantVectorStore) -> dict[str, Any]:
    """A server's index, and its cluster: each node and shard replica."""
    counts = await index_counts(vectors.location, QdrantGenerations(vectors))
    return {**counts, "cluster": await vectors.cluster(counts["active"])}


async def _qdrant_from_worker(base: str, key: str, timeout_s: float) -> dict[str, Any]:
    if not key:
        raise PermissionError(
            "the embedded Qdrant's count needs an admin key: pass --api-key, set "
            "DOCSTREAM_API_KEYS, or start the stack with `make run` (it keeps one in "
            ".stack/admin-key, which docstream finds by itself)"
        )
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        response = await client.get(f"{base}/admin/status", headers={"X-API-Key": key})
    if response.status_code in (401, 403):
        raise PermissionError(f"the worker refused the admin key ({response.status_code})")
    response.raise_for_status()
    section: dict[str, Any] = response.json()["qdrant"]
    return section
