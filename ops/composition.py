"""The composition root: the only module that knows every room.

Everything else is written against small seams (`core/types.py`) and takes
what it needs in its constructor; here the concrete pieces are made once and
handed over, and nothing is patched into an object after it was built:

- the stores, their generations, the health checks, and the admin control of
  rebuilds and replays (the worker owns the stores: an embedded Qdrant admits
  one process);
- the query edge, in the worker's process (the only choice with an embedded
  Qdrant) or as a process of its own over a Qdrant server (`run_api`);
- the Faust worker, whose stages share one `LiveProfile`, with the API on its
  event loop or only the probes and the scrape (`run_worker`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import faust
from faust.contrib.asgi import serve_asgi
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from api.app import create_api
from api.follow.consumer import NoticeConsumer
from api.follow.hub import FollowHub
from api.health import Check, Health, KafkaCheck, ops_app
from api.intake import Intake
from api.rebuild import RebuildControl, rebuild_routes
from api.search import QueryLimits, SearchService
from api.status import DocumentStatus
from api.warmup import Warmup
from core.heap import freeze_startup_heap, freeze_when_started
from core.kafka.admin import ensure_topics
from core.kafka.producer import AsyncProducer
from core.logs import configure_logging, get_logger, logging_config
from core.settings import Settings
from core.tracing import configure_tracing
from core.types import CurrentProfile, Generations, ReplayRequest
from ops.jobs.profile import (
    configured_processing,
    processing_for,
    restore_profile,
    stored_profile,
)
from ops.jobs.rebuild import Target, starter
from ops.jobs.replay import Replay
from ops.preflight import problems, refuse_to_start
from ops.stages import build_stages, stages_to_run
from ops.status import worker_status
from schemas.codec import Codecs
from sinks.neo4j.generations import GraphGenerations
from sinks.neo4j.store import Neo4jGraphStore
from sinks.qdrant.edge import EdgeVectorStore
from sinks.qdrant.generations import QdrantGenerations
from sinks.qdrant.server import QdrantVectorStore
from streams.app import (
    DocstreamApp,
    StartupHook,
    create_faust_app,
    document_state_table,
    register_agents,
)
from streams.embedding.model import SentenceTransformerEmbedder
from streams.profile import LiveProfile

log = get_logger(__name__)

Vectors = QdrantVectorStore | EdgeVectorStore


def vector_store(settings: Settings, dimension: int) -> Vectors:
    """A Qdrant server when QDRANT_URL is set, else the embedded engine
    QDRANT_ENGINE names: Qdrant Edge (indexed) or qdrant-client's local mode."""
    if settings.qdrant.embedded and settings.qdrant.engine == "edge":
        return EdgeVectorStore(settings.qdrant, dimension)
    return QdrantVectorStore(settings.qdrant, dimension)


def vector_generations(vectors: Vectors) -> Generations:
    return QdrantGenerations(vectors)  # one implementation over both engines' public methods


def worker_checks(
    settings: Settings, vectors: Vectors | None, graph: Neo4jGraphStore | None
) -> dict[str, Check]:
    """What this worker depends on: Kafka always, and the stores it writes."""
    checks: dict[str, Check] = {"kafka": KafkaCheck(settings.kafka)}
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

    def describe() -> dict[str, Any]:
        return stored_profile(live.current)

    targets = {
        "qdrant": lambda: Target("qdrant", vectors, vector_generations(vectors), live, describe),
        "neo4j": lambda: Target("neo4j", graph, GraphGenerations(graph), live, describe),
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


# The query edge.


def search_service(
    settings: Settings, profile: CurrentProfile, vectors: Vectors, graph: Neo4jGraphStore
) -> SearchService:
    limits = QueryLimits(
        max_k=settings.api.max_k,
        embed_timeout_s=settings.api.query_embed_timeout_s,
        store_timeout_s=settings.api.query_store_timeout_s,
    )
    return SearchService(profile, vectors, graph, limits)


def embedder_info(embedder: Any) -> dict[str, object]:
    """What /health says of the embedder: its backend (torch, onnx, onnx-int8)."""
    return {
        "model": embedder.model_name,
        "backend": getattr(embedder, "backend", "torch"),
        "path": getattr(embedder, "path", None),
    }


def build_api(
    settings: Settings,
    profile: CurrentProfile,
    vectors: Vectors,
    graph: Neo4jGraphStore,
    *,
    states: Mapping[str, Any] | None = None,
    current: Callable[[str], bool] | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    warmup: Warmup | None = None,
    warm_on_start: bool = False,
) -> Starlette:
    """The edge over these stores, querying with `profile`'s embedder.
    `states` (the worker's document-state table) and `current` (whether a
    state's profile is the one in use) serve GET /documents/{id}. With a
    `warmup`, /health/ready waits for it; `warm_on_start` runs it as the edge
    starts (a process of its own; the worker runs it as a startup hook)."""
    producer = AsyncProducer(settings.kafka, settings.api.intake_timeout_s)
    codec = Codecs.create(settings.schema_registry_url).documents
    intake = Intake(
        producer,
        codec,
        settings.kafka.topics.documents,
        settings.api,
        settings.chunker.max_text_bytes,
    )

    search = (
        warmup.search
        if warmup and warmup.search
        else search_service(settings, profile, vectors, graph)
    )
    # Follow mode: this process reads the sinks' notices itself (any number
    # of API processes follow alike) and matches them against its followers.
    follow = FollowHub(search, settings.api)
    notices = NoticeConsumer(settings.kafka, follow.on_notice)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        warming = asyncio.create_task(warmup.run()) if warmup and warm_on_start else None
        if warming is not None:
            warming.add_done_callback(_report_warmup_bug)
        notices.start()
        yield
        await notices.stop()
        if warming is not None:
            warming.cancel()
        producer.close()

    checks = worker_checks(settings, vectors, graph)
    if warmup is not None:
        checks["warm"] = warmup.check
    status = DocumentStatus(states, vectors, graph, current=current or (lambda _: True))
    return create_api(
        search,
        Health(checks, about=lambda: {"embedder": embedder_info(profile.embedder)}),
        settings=settings.api,
        intake=intake,
        status=status,
        admin_status=worker_status(
            settings,
            {
                "qdrant": (vectors.location, vector_generations(vectors)),
                "neo4j": (settings.neo4j.uri, GraphGenerations(graph)),
            },
        ),
        lifespan=lifespan,
        extra_routes=extra_routes,
        follow=follow,
    )


def run_api(settings: Settings) -> int:
    """The API as its own process: only with a Qdrant server, since an embedded
    Qdrant can be opened by one process at a time (the worker's)."""
    import uvicorn

    if settings.qdrant.embedded:
        raise SystemExit(
            "docstream api needs QDRANT_URL (a Qdrant server): the embedded Qdrant belongs "
            "to the worker process, which serves the API itself (docstream worker)."
        )
    configure_logging(settings.log_level)
    configure_tracing("docstream-api", os.environ)
    found = asyncio.run(problems(settings, graph=True, vectors=True))
    if found:
        return refuse_to_start("api", found)
    embedder = SentenceTransformerEmbedder(settings.embedder)
    profile = LiveProfile(configured_processing(settings, embedder))
    vectors = vector_store(settings, embedder.dimension)
    graph = Neo4jGraphStore(settings.neo4j)
    warmup = Warmup(profile, vectors, graph, search_service(settings, profile, vectors, graph))
    api = build_api(settings, profile, vectors, graph, warmup=warmup, warm_on_start=True)
    freeze_startup_heap()  # the model and the stores are loaded: keep them out of GC walks
    uvicorn.run(api, host=settings.api.host, port=settings.api.port, log_config=None)
    return 0


# The worker.


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
    opened = graph if "neo4j-sink" in runs or with_api else None
    hooks = startup_hooks(settings, profile, vectors, opened, warmup)
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
    profile: LiveProfile,
    vectors: Vectors | None,
    graph: Neo4jGraphStore | None,
    warmup: Warmup | None = None,
) -> list[tuple[str, StartupHook]]:
    """What must exist before the consumers start: the topics, and the schemas
    of the stores this worker opens; the profile that made the active index
    (the graph records it); then the query path is warmed (it needs them)."""

    def restore() -> Awaitable[None]:
        assert graph is not None
        return restore_profile(profile, GraphGenerations(graph), settings)

    return [
        ("kafka-topics", lambda: asyncio.to_thread(ensure_topics, settings.kafka)),
        *([("qdrant-schema", vectors.ensure_schema)] if vectors is not None else []),
        *([("neo4j-schema", graph.ensure_schema), ("profile", restore)] if graph else []),
        *([("query-warmup", warmup.run)] if warmup is not None else []),
        ("heap", freeze_when_started),  # last: what start-up built stays out of the GC's walks
    ]


def _report_warmup_bug(task: asyncio.Task[None]) -> None:
    """A bug in the API's warm-up (a store's outage is waited out inside it)
    leaves /health/ready on `warm`: say why at once, with the traceback,
    rather than when the task is collected."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("query warm-up failed: a bug, not a store outage", exc_info=exc)


def run_worker(settings: Settings, *, with_api: bool) -> int:
    configure_logging(settings.log_level)
    configure_tracing("docstream-worker", os.environ)
    runs = stages_to_run(settings, with_api=with_api)
    # The graph is always opened (document states, profiles); the vectors when
    # this worker writes them or serves queries.
    found = asyncio.run(problems(settings, graph=True, vectors="qdrant-sink" in runs or with_api))
    if found:
        return refuse_to_start("worker", found)
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
