"""The cluster profile's files and commands (tools/stack/cluster.py); the
cluster itself runs on the real binaries in tests/integration/test_cluster.py."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from core.settings import Settings
from tools.stack.__main__ import services
from tools.stack.cluster import ClusterPorts, client_env, cluster_services
from tools.stack.local import LocalStack
from tools.stack.services import KafkaBroker, Neo4jServer, QdrantServer

PORTS = ClusterPorts(
    kafka=((9192, 9193), (9194, 9195), (9196, 9197)),
    qdrant=((6433, 6435), (6443, 6445), (6453, 6455)),
    neo4j=7787,
)


def brokers_and_nodes(root: Path) -> tuple[list[KafkaBroker], list[QdrantServer]]:
    found = cluster_services(root, PORTS, Path("/bin/true"), lib_root=root / "shared")
    brokers = [s for s in found if isinstance(s, KafkaBroker)]
    nodes = [s for s in found if isinstance(s, QdrantServer)]
    assert [s.name for s in found if isinstance(s, Neo4jServer)] == ["neo4j"]
    return brokers, nodes


def properties(broker: KafkaBroker) -> dict[str, str]:
    lines = broker.properties().splitlines()
    return dict(line.split("=", 1) for line in lines if line)


def test_three_brokers_make_one_quorum_and_replicate_their_own_topics(tmp_path: Path) -> None:
    brokers, _ = brokers_and_nodes(tmp_path)
    assert [b.name for b in brokers] == ["kafka-1", "kafka-2", "kafka-3"]
    voters = "1@127.0.0.1:9193,2@127.0.0.1:9195,3@127.0.0.1:9197"
    for node, broker in enumerate(brokers, start=1):
        props = properties(broker)
        assert props["node.id"] == str(node)
        assert props["controller.quorum.voters"] == voters
        assert props["offsets.topic.replication.factor"] == "3"
        assert props["transaction.state.log.min.isr"] == "2"
        assert props["default.replication.factor"] == "3"
        assert props["min.insync.replicas"] == "2"
        assert props["log.dirs"] == str(tmp_path.resolve() / "data" / broker.name)
    # Each its own files, one cluster id, the jars shared with the other profiles.
    assert len({b.config for b in brokers} | {b.log4j for b in brokers}) == 6
    assert len({b.quorum.cluster_id for b in brokers if b.quorum}) == 1
    assert brokers[0].lib == tmp_path / "shared" / "lib" / "kafka"


def test_the_cluster_id_is_kept_so_a_broker_formatted_later_joins_the_same(
    tmp_path: Path,
) -> None:
    first, _ = brokers_and_nodes(tmp_path)
    again, _ = brokers_and_nodes(tmp_path)
    assert first[0].quorum is not None and again[0].quorum is not None
    assert first[0].quorum.cluster_id == again[0].quorum.cluster_id


def test_qdrant_nodes_join_the_first_peer(tmp_path: Path) -> None:
    _, nodes = brokers_and_nodes(tmp_path)
    assert [n.name for n in nodes] == ["qdrant-1", "qdrant-2", "qdrant-3"]
    for node in nodes:
        assert node.settings()["cluster"] == {"enabled": True, "p2p": {"port": node.port + 2}}
    first = nodes[0].command("marker")
    assert first[-2:] == ["--uri", "http://127.0.0.1:6435"] and "--bootstrap" not in first
    second = nodes[1].command("marker")
    assert second[-4:] == [
        "--uri",
        "http://127.0.0.1:6445",
        "--bootstrap",
        "http://127.0.0.1:6435",
    ]


def test_a_single_qdrant_server_is_no_cluster(tmp_path: Path) -> None:
    server = QdrantServer(tmp_path, "127.0.0.1", 6333, Path("/bin/true"))
    assert "cluster" not in server.settings()
    assert server.command("marker") == ["/bin/true", "--config-path", "marker"]


def test_clients_get_every_broker_and_the_replication_the_cluster_needs() -> None:
    env = client_env(PORTS)
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9192,127.0.0.1:9194,127.0.0.1:9196"
    settings = Settings.from_env(env)
    assert (settings.kafka.replication_factor, settings.kafka.min_insync_replicas) == (3, 2)
    qdrant = settings.qdrant
    assert (qdrant.url, qdrant.shards, qdrant.replication_factor) == ("http://127.0.0.1:6433", 2, 2)
    assert settings.neo4j.uri == "bolt://127.0.0.1:7787"


def test_the_cluster_lives_in_a_folder_of_its_own_beside_the_stack(tmp_path: Path) -> None:
    settings = Settings(stack_dir=tmp_path)
    plain = LocalStack(settings)
    cluster = LocalStack(settings, cluster=PORTS, env={"QDRANT_BIN": "/bin/true"})
    assert cluster.root == tmp_path.resolve() / "cluster" and plain.root == tmp_path.resolve()
    assert cluster.profile == "cluster" and cluster.env_file == cluster.root / "cluster.env"
    assert cluster.client_env() == client_env(PORTS)
    assert "a Qdrant cluster of 3 nodes at http://127.0.0.1:6433" in cluster.engine()
    elsewhere = LocalStack(settings, cluster=PORTS, cluster_dir=tmp_path / "t")
    assert elsewhere.root == (tmp_path / "t").resolve()


def test_secure_and_cluster_are_two_profiles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argparse.Namespace(action="status", names=[], json=False, secure=True, cluster=True)
    assert services(args, Settings(stack_dir=tmp_path)) == 1
    assert "--secure and --cluster are two profiles" in capsys.readouterr().err
