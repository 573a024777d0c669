"""The cluster profile (`python -m tools.stack up --cluster`, tools/stack/cluster.py)
on the real binaries: three Kafka brokers in one KRaft quorum, three Qdrant
nodes in one cluster, Neo4j; and the pipeline on it as a deployment runs it:
two workers in one consumer group, each writing through its own Qdrant node,
and an API process of its own on the third node beside the first worker's.

The module starts its own cluster (a folder and free ports of its own) and
stops it at the end; it needs a Qdrant server binary, as the server pass does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.admin import ConfigResource

from bench.pipeline import wait_ready
from core.kafka.admin import admin_client
from core.settings import Settings
from tests import optional
from tests.integration.conftest import REPO, TEST_API_KEY
from tests.integration.helpers import eventually
from tools.children import stop_child
from tools.stack.cluster import ClusterPorts, qdrant_urls
from tools.stack.local import LocalStack, qdrant_binary
from tools.stack.ports import free_port

pytestmark = pytest.mark.integration

AUTH = {"X-API-Key": TEST_API_KEY}
DOCS = 24


@dataclass
class Process:
    name: str
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        stop_child(self.process)  # as make run-cluster stops its processes


@dataclass
class Deployment:
    stack: LocalStack
    env: dict[str, str]  # the cluster's client settings and this module's names
    settings: Settings
    processes: dict[str, Process]

    @property
    def api(self) -> str:
        return self.processes["api"].base_url

    def cli(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "ops.cli", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            timeout=120,
        )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    binary = qdrant_binary(os.environ)
    optional.need(optional.QDRANT_SERVER, binary is not None)
    root = tmp_path_factory.mktemp("cluster")
    # The jars of the checkout's stack (fetched once), the rest in `root`.
    settings = Settings.from_env({**os.environ, "DOCSTREAM_STACK_DIR": str(REPO / ".stack")})
    stack = LocalStack(settings, cluster=ClusterPorts.free(), cluster_dir=root)
    stack.up(log=False)
    try:
        yield stack
    finally:
        stack.down()


def start(
    name: str, argv: list[str], env: dict[str, str], workdir: Path, probe: str = "/health/ready"
) -> Process:
    port = free_port()
    log_path = workdir / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", *argv],
            cwd=REPO,
            env={**env, "DOCSTREAM_API_PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    started = Process(name, f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_ready(started.base_url, process, log_path, probe)
    except BaseException:
        started.stop()
        raise
    return started


@pytest.fixture(scope="module")
def deployment(
    cluster: LocalStack, session_id: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    workdir = tmp_path_factory.mktemp("deployment")
    name = f"{session_id}-cluster"
    assert cluster.cluster is not None
    nodes = qdrant_urls(cluster.cluster)
    env = {
        **{
            k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "QDRANT_", "NEO4J_"))
        },
        **cluster.client_env(),
        "DOCSTREAM_TOPIC_PREFIX": f"{name}.",
        "DOCSTREAM_GROUP_ID": f"docstream-{name}",
        "NEO4J_GRAPH": name,
        "QDRANT_COLLECTION": name,
        "DOCSTREAM_CHUNK_MAX_TOKENS": "48",
        "DOCSTREAM_API_KEYS": TEST_API_KEY,
        "DOCSTREAM_RATE_LIMIT_PER_S": "500",
    }
    processes: dict[str, Process] = {}
    try:
        # Each process talks to its own Qdrant node: any node answers for the cluster.
        processes["worker-1"] = start(
            "worker-1", ["worker"], {**env, "QDRANT_URL": nodes[0]}, workdir
        )
        processes["worker-2"] = start(
            "worker-2", ["worker", "--no-api"], {**env, "QDRANT_URL": nodes[1]}, workdir
        )
        processes["api"] = start("api", ["api"], {**env, "QDRANT_URL": nodes[2]}, workdir)
        yield Deployment(cluster, env, Settings.from_env(env), processes)
    finally:
        for process in reversed(processes.values()):
            process.stop()


def status(deployment: Deployment) -> dict[str, Any]:
    metrics = f"{deployment.processes['worker-1'].base_url}/metrics"
    result = deployment.cli("status", "--json", "--metrics-url", metrics)
    assert result.returncode in (0, 1), result.stderr.decode()
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_topics_have_three_copies_and_need_two_in_sync(deployment: Deployment) -> None:
    kafka = deployment.settings.kafka
    admin = admin_client(kafka)
    topics = kafka.topics.all()
    described = admin.describe_configs([ConfigResource("topic", t) for t in topics])
    for resource, future in described.items():
        config = future.result(30)
        assert config["min.insync.replicas"].value == "2", resource
    metadata = admin.list_topics(timeout=30)
    assert sorted(metadata.brokers) == [1, 2, 3]
    for topic in topics:
        for partition in metadata.topics[topic].partitions.values():
            assert len(partition.replicas) == 3, (topic, partition.id)


def test_documents_through_one_api_are_found_through_the_other(deployment: Deployment) -> None:
    docs = [
        {"doc_id": f"c{i}", "text": f"Cluster ledger {i}: the quorum keeps copy {i} of the record."}
        for i in range(DOCS)
    ]
    first, second = deployment.processes["worker-1"].base_url, deployment.api
    posted = httpx.post(f"{first}/documents", json=docs, headers=AUTH, timeout=60)
    assert posted.status_code == 202, posted.text

    def indexed() -> bool:
        # A worker's document table answers for the partitions it holds (the
        # other worker's documents are 404 there), and a standalone API has no
        # table at all: the stores and the lag say it instead.
        report = status(deployment)
        counts = [report[store].get("chunks") for store in ("qdrant", "neo4j")]
        return bool(report["kafka"].get("caught_up")) and counts == [DOCS, DOCS]

    eventually(indexed, "every document indexed in both stores", 300)
    answer = httpx.get(
        f"{second}/query", params={"q": "cluster ledger quorum copy 7", "k": 5}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    assert "c7" in [hit["doc_id"] for hit in answer.json()["hits"]]


def test_status_shows_every_broker_qdrant_peer_shard_replica_and_worker(
    deployment: Deployment,
) -> None:
    report = status(deployment)
    kafka = report["kafka"]
    assert len(kafka["brokers"]) == 3, kafka["brokers"]
    documents = kafka["topics"][deployment.settings.kafka.topics.documents]
    assert documents["replication_factor"] == 3 and documents["under_replicated"] == []
    # Both workers hold partitions of the chunker's topic: one group, two members.
    chunker = kafka["groups"]["chunker"]
    assert len(chunker["members"]) == 2, chunker
    cluster = report["qdrant"]["cluster"]
    assert cluster["enabled"] and len(cluster["peers"]) == 3, cluster
    replicas = cluster["replicas"]
    shards = {r["shard"] for r in replicas}
    assert shards == {0, 1}, replicas
    for shard in shards:
        copies = [r for r in replicas if r["shard"] == shard]
        assert len({r["peer"] for r in copies}) == 2, copies  # on two distinct nodes
        assert all(r["state"] == "Active" for r in copies), copies
    text = deployment.cli("status", "--metrics-url", "http://127.0.0.1:1/metrics")
    shown = text.stdout.decode()
    assert "cluster: 3 peers" in shown and "replicas 3" in shown, shown
