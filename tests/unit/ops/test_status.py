"""The operator status report without services: lag arithmetic, Prometheus text
parsing and percentiles, probes that fail on their own, the text rendering, and
GET /admin/status behind its key."""

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from api.admin import AdminStatus
from api.app import create_api
from api.health import Health
from api.search import QueryLimits, SearchService
from core.kafka.groups import Group, Member
from core.kafka.offsets import Bounds, Cluster, Replicas
from core.settings import ApiSettings, KafkaSettings, Topics
from ops.status import (
    KafkaProbe,
    collect,
    histogram_quantile,
    lag,
    pipeline_metrics,
    render,
    stage_groups,
)
from ops.status.render import _index_lines, _kafka_lines, _pipeline_lines
from tests.fakes import FakeStore
from tests.profiles import FixedProfile

KEY = "admin-key"


def test_lag_counts_what_each_partition_still_owes_the_group() -> None:
    bounds = {0: (0, 10), 1: (5, 8), 2: (0, 0)}
    result = lag(bounds, {0: 7, 1: -1001})
    assert result == {"lag": 3 + 3, "partitions": {0: 3, 1: 3, 2: 0}}
    assert lag(bounds, {0: 10, 1: 8})["lag"] == 0
    assert lag({0: (0, 4)}, {})["lag"] == 4, "a group that never committed owes it all"


def test_each_stage_has_the_group_the_worker_gives_it() -> None:
    settings = KafkaSettings(topics=Topics("p."), group_id="g")
    assert [(s.name, s.group, s.topic) for s in stage_groups(settings)] == [
        ("chunker", "g", "p.documents"),
        ("embedder", "g.embedder", "p.chunks"),
        ("qdrant-sink", "g.qdrant-sink", "p.chunks.embedded"),
        ("neo4j-sink", "g.neo4j-sink", "p.chunks.embedded"),
    ]


def test_only_the_pipelines_own_topics_are_reported() -> None:
    probe = KafkaProbe(KafkaSettings(topics=Topics("p."), group_id="g"))
    existing = [
        "p.documents",
        "p.documents.dlq",
        "p.documents.dlq.redriven",
        "g-document_state-changelog",
        "other.documents",
        "__consumer_offsets",
    ]
    assert probe.topic_names(existing) == sorted(existing[:4])


class BatchFinishing:
    """The brokers' offsets while the embedder finishes its last batch of 5
    chunks: after the `moment`th question the status asks, the batch's output
    lands in chunks.embedded and the embedder commits it; the sinks have not
    read it yet."""

    def __init__(self, moment: int) -> None:
        self.moment = moment
        self.asked = 0
        self.ends = {"p.documents": 10, "p.chunks": 20, "p.chunks.embedded": 15}
        self.committed_at = {"g": 10, "g.embedder": 15, "g.qdrant-sink": 15, "g.neo4j-sink": 15}

    def _tick(self) -> None:
        if self.asked == self.moment:
            self.ends["p.chunks.embedded"] = 20
            self.committed_at["g.embedder"] = 20
        self.asked += 1

    def cluster(self) -> Cluster:
        return Cluster(brokers=["1@k:9092"], topics={t: [0] for t in self.ends})

    def bounds(self, topics: list[str]) -> dict[str, Bounds]:
        self._tick()
        return {t: {0: (0, self.ends[t])} for t in topics if t in self.ends}

    def committed(self, group: str, topic: str, partitions: list[int]) -> dict[int, int]:
        self._tick()
        return {0: self.committed_at[group]}


@pytest.mark.parametrize("moment", range(6))
def test_a_batch_in_flight_is_counted_whenever_it_finishes(moment: int) -> None:
    """Lag 0 must mean both stores hold everything: a batch finishing between
    the report's questions never reads as caught up (ends read before the
    commits made the embedder and both sinks read 0 with 5 chunks unwritten)."""
    probe = KafkaProbe(KafkaSettings(topics=Topics("p."), group_id="g"))
    probe.offsets = BatchFinishing(moment)  # type: ignore[assignment]
    probe.describe = lambda groups: {}
    report = probe.snapshot()
    owed = {stage: group["lag"] for stage, group in report["groups"].items()}
    assert report["caught_up"] is False
    assert sum(owed.values()) >= 5, owed
    assert "caught up: no" in "\n".join(_kafka_lines(report))


def test_every_stage_at_its_end_is_caught_up() -> None:
    probe = KafkaProbe(KafkaSettings(topics=Topics("p."), group_id="g"))
    probe.offsets = BatchFinishing(moment=-1)  # type: ignore[assignment]
    probe.describe = lambda groups: {}
    probe.offsets.committed_at["g.embedder"] = 20  # type: ignore[attr-defined]
    probe.offsets.ends["p.chunks.embedded"] = 20  # type: ignore[attr-defined]
    probe.offsets.committed_at.update({"g.qdrant-sink": 20, "g.neo4j-sink": 20})  # type: ignore[attr-defined]
    report = probe.snapshot()
    assert report["caught_up"] is True
    assert "caught up: both stores hold everything" in "\n".join(_kafka_lines(report))


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    buckets = [(0.5, 10.0), (1.0, 20.0), (2.0, 40.0), (float("inf"), 40.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(1.0)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.5)
    assert histogram_quantile(0.75, buckets) == pytest.approx(1.5)
    assert histogram_quantile(0.1, buckets) == pytest.approx(0.2)
    overflow = [(1.0, 1.0), (float("inf"), 10.0)]
    assert histogram_quantile(0.99, overflow) == 1.0, "past the last bound: the last bound"
    assert histogram_quantile(0.5, [(1.0, 0.0), (float("inf"), 0.0)]) is None
    assert histogram_quantile(0.5, []) is None


def worker_metrics_text() -> str:
    """Metrics named as the worker's (core/metrics.py), in a registry of our own."""
    registry = CollectorRegistry()
    breaker = Gauge("docstream_breaker_open", "", ["sink"], registry=registry)
    breaker.labels("qdrant-sink").set(1)
    breaker.labels("neo4j-sink").set(0)
    Gauge("docstream_sink_up", "", ["sink"], registry=registry).labels("neo4j-sink").set(1)
    blocked = Gauge("docstream_sink_blocked", "", ["sink", "reason"], registry=registry)
    blocked.labels("qdrant-sink", "disk_full").set(1)
    blocked.labels("neo4j-sink", "permission").set(0)  # blocked before, written since
    Gauge("docstream_consumer_paused", "", ["stage"], registry=registry).labels("embedder").set(1)
    events = Counter("docstream_events_total", "", ["stage", "outcome"], registry=registry)
    events.labels("chunker", "index").inc(5)
    events.labels("chunker", "dead_lettered").inc(2)
    freshness = Histogram(
        "docstream_freshness_seconds", "", ["sink"], buckets=(0.5, 1, 2), registry=registry
    )
    for seconds in [0.2] * 10 + [0.8] * 10 + [1.5] * 20:
        freshness.labels("qdrant-sink").observe(seconds)
    profile = Gauge(
        "docstream_profile",
        "",
        ["model", "max_tokens", "overlap_tokens", "configured"],
        registry=registry,
    )
    profile.labels("m", "64", "8", "false").set(1)
    backend = Gauge("docstream_embedder_backend", "", ["backend"], registry=registry)
    backend.labels("onnx-int8").set(1)
    return generate_latest(registry).decode()


def test_breakers_freshness_and_events_come_from_the_worker_metrics_text() -> None:
    parsed = pipeline_metrics(worker_metrics_text())
    assert parsed["breakers"] == {"qdrant-sink": "open", "neo4j-sink": "closed"}
    assert parsed["sinks_up"] == {"neo4j-sink": True}
    assert parsed["sinks_blocked"] == {"qdrant-sink": "disk_full"}
    assert parsed["consumers_paused"] == {"embedder": True}
    assert parsed["events"]["chunker"] == {"index": 5.0, "dead_lettered": 2.0}
    fresh = parsed["freshness_s"]["qdrant-sink"]
    assert fresh["count"] == 40
    assert fresh["p50"] == pytest.approx(1.0) and fresh["p95"] == pytest.approx(1.9)
    assert parsed["profile"] == {
        "model": "m",
        "max_tokens": "64",
        "overlap_tokens": "8",
        "configured": False,
    }
    assert parsed["embedder_backend"] == "onnx-int8"
    lines = _pipeline_lines({**parsed, "source": "test"})
    assert "  embedder backend: onnx-int8" in lines


def test_text_without_pipeline_metrics_gives_empty_sections() -> None:
    parsed = pipeline_metrics("# nothing here\n")
    assert parsed == {
        "breakers": {},
        "sinks_up": {},
        "sinks_blocked": {},
        "consumers_paused": {},
        "consumers": {},
        "events": {},
        "freshness_s": {},
        "profile": None,
        "embedder_backend": None,
        "follow": None,
    }


async def test_a_probe_that_fails_or_hangs_is_reported_and_the_rest_still_is() -> None:
    async def fine() -> dict[str, Any]:
        return {"points": 3}

    async def broken() -> dict[str, Any]:
        raise ConnectionError("refused")

    async def hangs() -> dict[str, Any]:
        await asyncio.sleep(10)
        return {}

    report = await collect({"qdrant": fine, "neo4j": broken, "kafka": hangs}, timeout_s=0.05)
    assert report["qdrant"] == {"points": 3}
    assert report["neo4j"] == {"error": "ConnectionError: refused"}
    assert report["kafka"]["error"].startswith("TimeoutError")
    assert "at" in report


def test_the_report_renders_as_text_section_by_section() -> None:
    report = {
        "at": "now",
        "kafka": {
            "brokers": ["1@k:9092"],
            "topics": {
                "documents": {"partitions": 3, "records": 7, "end_offsets": {0: 3, 1: 4, 2: 0}}
            },
            "missing_topics": ["chunks.dlq"],
            "groups": {"chunker": {"group": "docstream", "topic": "documents", "lag": 2}},
        },
        "pipeline": {"source": "in-process", **pipeline_metrics(worker_metrics_text())},
        "qdrant": {"error": "ConnectionError: refused"},
        "neo4j": {
            "location": "bolt://n:7687",
            "active": "docstream:1",
            "chunks": 9,
            "documents": 2,
            "building": "docstream:2",
            "building_size": {"chunks": 4, "documents": 1},
            "profile": {"model": "m", "dimension": 3, "max_tokens": 64, "overlap_tokens": 8},
        },
    }
    text = render(report)
    assert "documents" in text and "end offsets 3,4,0" in text
    assert "chunks.dlq" in text and "missing" in text
    assert "lag chunker" in text and "docstream" in text
    assert "breakers: neo4j-sink closed, qdrant-sink open" in text
    assert "consumer embedder     busy: its batch takes longer than 1 s" in text
    assert (
        "consumer qdrant-sink  waiting_for_store: waiting for qdrant: blocked: disk_full, "
        "its breaker is open" in text
    )
    assert "freshness qdrant-sink: p50 1.00s" in text
    assert "qdrant-sink: blocked: disk_full — the operator must fix it" in text
    assert "neo4j-sink: blocked" not in text
    assert "qdrant\n  unavailable: ConnectionError: refused" in text
    assert "docstream:1: 9 chunks, 2 documents (bolt://n:7687)" in text
    assert "rebuilding into docstream:2: 4 chunks" in text
    assert "made with m (3-d) max_tokens=64 overlap_tokens=8" in text
    assert "profile: m max_tokens=64 overlap_tokens=8 (a replay's: not yet the configured" in text


def admin_client(keys: frozenset[str], provider: Any = None, **api: Any) -> TestClient:
    async def report() -> dict[str, Any]:
        return {"kafka": {"brokers": ["1@k:9092"]}}

    search = SearchService(FixedProfile(), FakeStore(), FakeStore(), QueryLimits())
    settings = ApiSettings(api_keys=keys, rate_limit_per_s=0, **api)
    return TestClient(
        create_api(search, Health({}), settings=settings, admin_status=provider or report)
    )


def test_admin_status_needs_a_key_even_where_reads_are_open() -> None:
    api = admin_client(frozenset({KEY}), reads_need_key=False)
    assert api.get("/query", params={"q": "x"}).status_code == 200, "reads are open here"
    missing = api.get("/admin/status")
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert api.get("/admin/status", headers={"X-API-Key": "wrong"}).status_code == 401
    ok = api.get("/admin/status", headers={"Authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200 and ok.json() == {"kafka": {"brokers": ["1@k:9092"]}}


def test_admin_status_is_closed_when_no_key_is_configured() -> None:
    response = admin_client(frozenset()).get("/admin/status", headers={"X-API-Key": ""})
    assert response.status_code == 401
    assert "no API keys are configured" in response.json()["detail"]


def test_admin_status_that_takes_too_long_is_a_503() -> None:
    async def slow() -> dict[str, Any]:
        await asyncio.sleep(5)
        return {}

    admin = AdminStatus(slow, frozenset({KEY}), timeout_s=0.05)
    api = TestClient(Starlette(routes=[Route("/admin/status", admin.get)]))
    assert api.get("/admin/status", headers={"X-API-Key": KEY}).status_code == 503


def test_admin_status_is_mounted_only_with_a_provider_and_is_documented() -> None:
    search = SearchService(FixedProfile(), FakeStore(), FakeStore(), QueryLimits())
    plain = TestClient(
        create_api(search, Health({}), settings=ApiSettings(api_keys=frozenset({KEY})))
    )
    assert plain.get("/admin/status", headers={"X-API-Key": KEY}).status_code == 404
    api = admin_client(frozenset({KEY}))
    paths = api.get("/openapi.json").json()["paths"]
    assert paths["/admin/status"]["get"]["security"]
    routes = {route.path for route in api.app.routes}  # type: ignore[attr-defined]
    assert routes <= set(paths)


class ThreeBrokers(BatchFinishing):
    """Broker 3 is down: every partition it held is short of one in-sync copy."""

    def cluster(self) -> Cluster:
        short = {0: Replicas(1, (1, 2, 3), (1, 2))}
        return Cluster(
            brokers=["1@k:9091", "2@k:9092"],
            topics={t: [0] for t in self.ends},
            replicas={t: short for t in self.ends},
        )


def test_each_topic_says_its_copies_and_each_stage_its_workers() -> None:
    probe = KafkaProbe(KafkaSettings(topics=Topics("p."), group_id="g"))
    probe.offsets = ThreeBrokers(moment=-1)  # type: ignore[assignment]
    one = Member("worker-a", "/127.0.0.1", {"p.documents": (0, 2)})
    two = Member("worker-b", "/127.0.0.1", {"p.documents": (1,)})
    probe.describe = lambda groups: {"g": Group("STABLE", (one, two))}
    report = probe.snapshot()
    documents = report["topics"]["p.documents"]
    assert (documents["replication_factor"], documents["under_replicated"]) == (3, [0])
    assert report["groups"]["chunker"]["members"][1]["partitions"] == {"p.documents": (1,)}
    assert report["groups"]["embedder"]["state"] == "unknown"  # a group the brokers did not name
    text = "\n".join(_kafka_lines(report))
    assert "replicas 3 under-replicated 0" in text
    assert "group stable, 2 members" in text
    assert "member worker-a at /127.0.0.1: p.documents 0,2" in text


def test_a_qdrant_cluster_renders_each_peer_and_shard_replica() -> None:
    cluster = {
        "enabled": True,
        "asked_peer": 11,
        "peers": [
            {"peer": "11", "uri": "http://a:6335/", "failed_sends": 0},
            {"peer": "12", "uri": "http://b:6335/", "failed_sends": 4},
        ],
        "collection": "c-g0",
        "replicas": [
            {"shard": 0, "peer": 11, "state": "Active", "points": 5},
            {"shard": 0, "peer": 12, "state": "Dead"},
        ],
    }
    index = {"location": "server", "active": "c-g0", "chunks": 5, "cluster": cluster}
    text = "\n".join(_index_lines(index))
    assert "cluster: 2 peers (asked peer 11)" in text
    assert "peer 12 http://b:6335/, 4 failed sends" in text
    assert "c-g0 shard 0 on peer 11: Active 5 points" in text
    assert "c-g0 shard 0 on peer 12: Dead" in text
    single = "\n".join(_index_lines({**index, "cluster": {"enabled": False}}))
    assert "cluster: off (a single node)" in single
