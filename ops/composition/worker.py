"""The worker: the stores, the embedder, one `LiveProfile` that every stage
and the query service read, the Faust app and its stages and (in the
single-process mode the embedded Qdrant needs) the API on the worker's event
loop; then run them until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import faust
from faust.contrib.asgi import serve_asgi

from api.health import Health, ops_app
from api.rebuild import rebuild_routes
from api.warmup import Warmup
from core.heap import freeze_when_started
from core.kafka.admin import ensure_topics
from core.logs import configure_logging, get_logger, logging_config
from core.settings import Settings
from core.tracing import configure_tracing
from ops.composition.api import build_api, search_service
from ops.composition.stores import Vectors, rebuild_control, vector_store, worker_checks
from ops.jobs.profile import configured_processing
from schemas.codec import Codecs
from sinks.breaker import sink_breaker
from sinks.faults import with_injected_faults
from sinks.neo4j.store import Neo4jGraphStore
from streams.app import (
    DocstreamApp,
    Stages,
    StartupHook,
    create_faust_app,
    document_state_table,
    register_agents,
)
from streams.deadletter import DeadLetters
from streams.embedding.model import SentenceTransformerEmbedder
from streams.producer import FaustProducer
from streams.profile import LiveProfile
from streams.stages import ChunkStage, EmbedStage, SinkStage

log = get_logger(__name__)


def build_worker(settings: Settings, *, with_api: bool) -> DocstreamApp:
    runs = stages_to_run(settings, with_api=with_api)
    embedder = SentenceTransformerEmbedder(settings.embedder)
    # The one holder of the profile in use: a replay's switch changes it alone.
    profile = LiveProfile(configured_processing(settings, embedder))
    # An embedded Qdrant admits one process: only the worker that writes it opens it.
    vectors = (
        vector_store(settings, embedder.dimension) if "qdrant-sink" in runs or with_api else None
    )
    graph = Neo4jGraphStore(settings.neo4j)
    # With the API: its query path is warmed once the stores are set up, and
    # /health/ready waits for that (the first user query is not a cold one).
    warmup = (
        Warmup(profile, vectors, graph, search_service(settings, profile, vectors, graph))
        if with_api and vectors is not None
        else None
    )
    hooks = startup_hooks(
        settings, vectors, graph if "neo4j-sink" in runs or with_api else None, warmup
    )
    app = create_faust_app(settings, web=True, startup_hooks=hooks)
    codecs = Codecs.create(settings.schema_registry_url)
    states = document_state_table(app, settings.kafka.partitions)
    stages = build_stages(settings, runs, app, codecs, profile, states, vectors, graph)
    register_agents(app, settings, stages)
    if with_api and vectors is not None:
        rebuilds = rebuild_control(settings, codecs, vectors, graph, profile)
        api = build_api(
            settings,
            profile,
            vectors,
            graph,
            states=states,
            current=profile.cut_by_current,
            extra_routes=rebuild_routes(rebuilds),
            warmup=warmup,
        )
        serve_asgi(app, api, host=settings.api.host, port=settings.api.port)
    else:
        # No API: still the probes and the scrape, on the same address.
        checks = worker_checks(settings, vectors, graph if "neo4j-sink" in runs else None)
        serve_asgi(app, ops_app(Health(checks)), host=settings.api.host, port=settings.api.port)
    return app


def startup_hooks(
    settings: Settings,
    vectors: Vectors | None,
    graph: Neo4jGraphStore | None,
    warmup: Warmup | None = None,
) -> list[tuple[str, StartupHook]]:
    """What must exist before the consumers start: the topics, and the schemas
    of the stores this worker opens; then the query path is warmed (it needs them)."""
    return [
        ("kafka-topics", lambda: asyncio.to_thread(ensure_topics, settings.kafka)),
        *([("qdrant-schema", vectors.ensure_schema)] if vectors is not None else []),
        *([("neo4j-schema", graph.ensure_schema)] if graph is not None else []),
        *([("query-warmup", warmup.run)] if warmup is not None else []),
        ("heap", freeze_when_started),  # last: what start-up built stays out of the GC's walks
    ]


def build_stages(
    settings: Settings,
    runs: set[str],
    app: DocstreamApp,
    codecs: Codecs,
    profile: LiveProfile,
    states: Any,
    vectors: Vectors | None,
    graph: Neo4jGraphStore,
) -> Stages:
    """The stages this worker runs, all reading the same `profile`."""
    producer = FaustProducer(app)
    dead_letters = DeadLetters(producer, codecs.dead_letters)
    topics = settings.kafka.topics
    sinks = []
    if vectors is not None and "qdrant-sink" in runs:
        sinks.append(
            SinkStage(
                with_injected_faults(vectors),  # as is, unless DOCSTREAM_FAULT_QDRANT_WRITES
                codecs,
                dead_letters,
                "qdrant-sink",
                sink_breaker("qdrant-sink"),
                profile=profile,  # vectors of a model a replay replaced are skipped
            )
        )
    if "neo4j-sink" in runs:
        sinks.append(
            SinkStage(
                graph,
                codecs,
                dead_letters,
                "neo4j-sink",
                sink_breaker("neo4j-sink"),
                profile=profile,
            )
        )
    return Stages(
        chunk=ChunkStage(
            profile,
            codecs,
            producer,
            dead_letters,
            topics,
            states,
            max_text_bytes=settings.chunker.max_text_bytes,
        ),
        embed=EmbedStage(profile, codecs, producer, dead_letters, topics)
        if "embedder" in runs
        else None,
        sinks=sinks,
    )


def stages_to_run(settings: Settings, *, with_api: bool) -> set[str]:
    """DOCSTREAM_WORKER_STAGES, checked against where the vectors live."""
    runs = set(settings.worker_stages)
    if with_api and settings.qdrant.embedded and "qdrant-sink" not in runs:
        raise SystemExit(
            "a worker without qdrant-sink cannot serve the API over an embedded Qdrant: "
            "it belongs to the worker that writes it. Run this one with --no-api, "
            "or set QDRANT_URL (a Qdrant server)."
        )
    return runs


def run_worker(settings: Settings, *, with_api: bool) -> int:
    configure_logging(settings.log_level)
    configure_tracing("docstream-worker", os.environ)
    app = build_worker(settings, with_api=with_api)
    log.info(
        "worker starting",
        extra={
            "with_api": with_api,
            "stages": list(settings.worker_stages),
            "api": f"{settings.api.host}:{settings.api.port}",
            "bootstrap": settings.kafka.bootstrap_servers,
            "qdrant": settings.qdrant.url or str(settings.qdrant.path),
        },
    )
    worker = faust.Worker(
        app,
        loglevel=settings.log_level.lower(),
        logging_config=logging_config(settings.log_level),
        redirect_stdouts=False,
        quiet=True,
    )
    worker.execute_from_commandline()
    return 0
