"""The cluster profile of the local stack (`python -m tools.stack up --cluster`):
the production topology on one box, each node its own process on loopback.

- Three Kafka brokers in KRaft's combined mode (each also a controller, the
  three the quorum), whose topics docstream creates with replication factor 3
  and `min.insync.replicas` 2: with the producers' acks=all and idempotence,
  one broker down loses no write and refuses none.
- Three Qdrant nodes in one cluster, whose collections docstream creates with
  2 shards, each on 2 nodes, and a write consistency of 1: one node down, every
  shard still has a copy that takes writes and answers reads.
- One Neo4j (the community edition has no cluster), with its own data.

Its ports are not the plaintext profile's (`ClusterPorts.DEFAULT`), so a
client reaches it only through the settings that `up` writes to
`<stack>/cluster.env`; the replication settings travel in that file too."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tools.stack.ports import free_port
from tools.stack.services import (
    KafkaBroker,
    KafkaQuorum,
    Neo4jServer,
    QdrantPeer,
    QdrantServer,
    Service,
    new_cluster_id,
)

HOST = "127.0.0.1"
ENV_HEADER = "The cluster profile's client settings (python -m tools.stack up --cluster)."
NODES = 3
KAFKA_REPLICATION = {"KAFKA_REPLICATION_FACTOR": "3", "KAFKA_MIN_INSYNC_REPLICAS": "2"}
QDRANT_REPLICATION = {
    "QDRANT_SHARDS": "2",
    "QDRANT_REPLICATION_FACTOR": "2",
    "QDRANT_WRITE_CONSISTENCY": "1",
}


@dataclass(frozen=True)
class ClusterPorts:
    """Every port of the cluster: per broker its client and controller ports,
    per Qdrant node its HTTP and P2P ports (gRPC is HTTP + 1), Neo4j's Bolt."""

    kafka: tuple[tuple[int, int], ...]
    qdrant: tuple[tuple[int, int], ...]
    neo4j: int

    @classmethod
    def default(cls) -> ClusterPorts:
        return cls(
            kafka=tuple((19092 + 2 * i, 19093 + 2 * i) for i in range(NODES)),
            qdrant=tuple((16333 + 10 * i, 16335 + 10 * i) for i in range(NODES)),
            neo4j=17687,
        )

    @classmethod
    def free(cls) -> ClusterPorts:
        """Ports free now (a test's cluster beside anything else running).
        gRPC takes the port after HTTP, which the OS did not check."""
        return cls(
            kafka=tuple((free_port(), free_port()) for _ in range(NODES)),
            qdrant=tuple((free_port(), free_port()) for _ in range(NODES)),
            neo4j=free_port(),
        )


def cluster_id(root: Path) -> str:
    """The brokers' one cluster id, kept beside their data: a broker formatted
    again later (its folder removed) joins the same cluster."""
    path = root / "data" / "kafka-cluster.id"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(new_cluster_id())
    return path.read_text().strip()


def brokers(root: Path, ports: ClusterPorts, lib_root: Path) -> list[KafkaBroker]:
    quorum = KafkaQuorum(
        controllers=tuple((i + 1, controller) for i, (_, controller) in enumerate(ports.kafka)),
        cluster_id=cluster_id(root),
        replicas=int(KAFKA_REPLICATION["KAFKA_REPLICATION_FACTOR"]),
        min_insync=int(KAFKA_REPLICATION["KAFKA_MIN_INSYNC_REPLICAS"]),
    )
    return [
        KafkaBroker(
            root,
            HOST,
            port,
            controller,
            f"kafka-{i + 1}",
            node_id=i + 1,
            quorum=quorum,
            lib_root=lib_root,
        )
        for i, (port, controller) in enumerate(ports.kafka)
    ]


def qdrant_nodes(root: Path, ports: ClusterPorts, binary: Path | None) -> list[QdrantServer]:
    first_p2p = ports.qdrant[0][1]
    return [
        QdrantServer(
            root,
            HOST,
            http,
            binary,
            f"qdrant-{i + 1}",
            peer=QdrantPeer(p2p, None if i == 0 else first_p2p),
        )
        for i, (http, p2p) in enumerate(ports.qdrant)
    ]


def cluster_services(
    root: Path, ports: ClusterPorts, qdrant_binary: Path | None, lib_root: Path
) -> list[Service]:
    """In start order: the brokers, the Qdrant nodes (the first peer first:
    the others join through it), Neo4j. Their files live under `root` (a
    folder of the stack's own), the jars under `lib_root` (shared with the
    other profiles: fetched once)."""
    neo4j = Neo4jServer(root, HOST, ports.neo4j, lib_root=lib_root)
    nodes = qdrant_nodes(root, ports, qdrant_binary)
    return [*brokers(root, ports, lib_root), *nodes, neo4j]


def client_env(ports: ClusterPorts) -> dict[str, str]:
    """What a docstream process needs to reach the cluster. QDRANT_URL names
    the first node; a process may name any other (each answers for all)."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": ",".join(f"{HOST}:{port}" for port, _ in ports.kafka),
        **KAFKA_REPLICATION,
        "NEO4J_URI": f"bolt://{HOST}:{ports.neo4j}",
        "QDRANT_URL": qdrant_urls(ports)[0],
        **QDRANT_REPLICATION,
    }


def qdrant_urls(ports: ClusterPorts) -> list[str]:
    return [f"http://{HOST}:{http}" for http, _ in ports.qdrant]
