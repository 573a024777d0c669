"""The stores the worker and the API open, what their health checks are, and
the admin control that rebuilds and replays them (the worker owns the stores:
an embedded Qdrant admits one process)."""

from __future__ import annotations

import asyncio

from api.health import Check, KafkaCheck
from api.rebuild import RebuildControl
from core.settings import Settings
from core.types import Generations, ReplayRequest
from ops.jobs.profile import processing_for
from ops.jobs.rebuild import Target, starter
from ops.jobs.replay import Replay
from schemas.codec import Codecs
from sinks.neo4j.generations import GraphGenerations
from sinks.neo4j.store import Neo4jGraphStore
from sinks.qdrant.edge import EdgeVectorStore
from sinks.qdrant.edge_generations import EdgeGenerations
from sinks.qdrant.generations import QdrantGenerations
from sinks.qdrant.server import QdrantVectorStore
from streams.profile import LiveProfile

Vectors = QdrantVectorStore | EdgeVectorStore


def vector_store(settings: Settings, dimension: int) -> Vectors:
    """A Qdrant server when QDRANT_URL is set, else the embedded engine
    QDRANT_ENGINE names: Qdrant Edge (indexed) or qdrant-client's local mode."""
    if settings.qdrant.embedded and settings.qdrant.engine == "edge":
        return EdgeVectorStore(settings.qdrant, dimension)
    return QdrantVectorStore(settings.qdrant, dimension)


def vector_generations(vectors: Vectors) -> Generations:
    if isinstance(vectors, EdgeVectorStore):
        return EdgeGenerations(vectors)
    return QdrantGenerations(vectors)


def graph_generations(graph: Neo4jGraphStore) -> Generations:
    return GraphGenerations(graph)


def worker_checks(
    settings: Settings, vectors: Vectors | None, graph: Neo4jGraphStore | None
) -> dict[str, Check]:
    """What this worker depends on: Kafka always, and the stores it writes."""
    checks: dict[str, Check] = {"kafka": KafkaCheck(settings.kafka.bootstrap_servers)}
    if graph is not None:
        checks["neo4j"] = graph.ping
    if vectors is not None:
        checks["qdrant"] = vectors.ping
    return checks


def rebuild_control(
    settings: Settings,
    codecs: Codecs,
    vectors: Vectors,
    graph: Neo4jGraphStore,
    live: LiveProfile,
) -> RebuildControl:
    """Rebuilds and replays run in the worker, which owns the stores
    (`ops/jobs/rebuild.py`, `ops/jobs/replay.py`)."""
    targets = {
        "qdrant": lambda: Target("qdrant", vectors, vector_generations(vectors), live),
        "neo4j": lambda: Target("neo4j", graph, graph_generations(graph), live),
    }

    async def replay(request: ReplayRequest) -> Replay:
        processing = await asyncio.to_thread(processing_for, live, request, settings)
        run = Replay(
            processing,
            [make() for make in targets.values()],
            settings.kafka,
            codecs,
            live.adopt,
            settings.chunker.max_text_bytes,
        )
        run.start()
        return run

    return RebuildControl(
        starter(settings.kafka, codecs, targets), settings.api.api_keys, replay=replay
    )
