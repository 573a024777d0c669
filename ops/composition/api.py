"""The query edge: in the worker's process (`worker.py`, the only choice with an
embedded Qdrant) or as a process of its own over a Qdrant server (`run_api`)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from api.app import create_api
from api.health import Health
from api.intake import Intake
from api.search import QueryLimits, SearchService
from api.status import DocumentStatus
from api.warmup import Warmup
from core.heap import freeze_startup_heap
from core.kafka.producer import AsyncProducer
from core.logs import configure_logging
from core.settings import Settings
from core.tracing import configure_tracing
from core.types import CurrentProfile
from ops.composition.stores import (
    Vectors,
    graph_generations,
    vector_generations,
    vector_store,
    worker_checks,
)
from ops.jobs.profile import configured_processing
from ops.status import worker_status
from schemas.codec import Codecs
from sinks.neo4j.store import Neo4jGraphStore
from streams.embedding.model import SentenceTransformerEmbedder
from streams.profile import LiveProfile


def search_service(
    settings: Settings, profile: CurrentProfile, vectors: Vectors, graph: Neo4jGraphStore
) -> SearchService:
    limits = QueryLimits(
        max_k=settings.api.max_k,
        embed_timeout_s=settings.api.query_embed_timeout_s,
        store_timeout_s=settings.api.query_store_timeout_s,
    )
    return SearchService(profile, vectors, graph, limits)


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
    producer = AsyncProducer(
        settings.kafka.bootstrap_servers,
        settings.api.intake_timeout_s,
        settings.kafka.max_message_bytes,
    )
    codec = Codecs.create(settings.schema_registry_url).documents
    intake = Intake(
        producer,
        codec,
        settings.kafka.topics.documents,
        settings.api,
        settings.chunker.max_text_bytes,
    )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        warming = asyncio.create_task(warmup.run()) if warmup and warm_on_start else None
        yield
        if warming is not None:
            warming.cancel()
        producer.close()

    search = (
        warmup.search
        if warmup and warmup.search
        else search_service(settings, profile, vectors, graph)
    )
    checks = worker_checks(settings, vectors, graph)
    if warmup is not None:
        checks["warm"] = warmup.check
    status = DocumentStatus(states, vectors, graph, current=current or (lambda _: True))
    return create_api(
        search,
        Health(
            {
                **worker_checks(settings, vectors, graph),
                **({"warm": warmup.check} if warmup else {}),
            }
        ),
        settings=settings.api,
        intake=intake,
        status=status,
        admin_status=worker_status(
            settings,
            {
                "qdrant": (vectors.location, vector_generations(vectors)),
                "neo4j": (settings.neo4j.uri, graph_generations(graph)),
            },
        ),
        lifespan=lifespan,
        extra_routes=extra_routes,
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
    embedder = SentenceTransformerEmbedder(settings.embedder)
    profile = LiveProfile(configured_processing(settings, embedder))
    vectors = vector_store(settings, embedder.dimension)
    graph = Neo4jGraphStore(settings.neo4j)
    warmup = Warmup(profile, vectors, graph, search_service(settings, profile, vectors, graph))
    api = build_api(settings, profile, vectors, graph, warmup=warmup, warm_on_start=True)
    freeze_startup_heap()  # the model and the stores are loaded: keep them out of GC walks
    uvicorn.run(api, host=settings.api.host, port=settings.api.port, log_config=None)
    return 0
