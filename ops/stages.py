"""The stages a worker runs (`DOCSTREAM_WORKER_STAGES`), wired to the stores
it opens: the part of the composition root (`ops/composition.py`) that knows
the streams and the sinks, and nothing of the query edge."""

from __future__ import annotations

from typing import Any

from core.settings import Settings
from core.types import GraphStore, VectorStore
from schemas.codec import Codecs
from sinks.breaker import sink_breaker
from sinks.faults import with_injected_faults
from streams.app import DocstreamApp, Stages
from streams.deadletter import DeadLetters
from streams.producer import FaustProducer
from streams.profile import LiveProfile
from streams.stages import ChunkStage, EmbedStage, SinkStage


def build_stages(
    settings: Settings,
    runs: set[str],
    app: DocstreamApp,
    codecs: Codecs,
    profile: LiveProfile,
    states: Any,
    vectors: VectorStore | None,
    graph: GraphStore,
) -> Stages:
    """The stages this worker runs, all reading the same `profile`."""
    producer = FaustProducer(app)
    dead_letters = DeadLetters(producer, codecs.dead_letters)
    topics = settings.kafka.topics

    def sink(store: Any, name: str) -> SinkStage:
        return SinkStage(
            store,
            codecs,
            dead_letters,
            name,
            sink_breaker(name),
            profile=profile,  # vectors of a model a replay replaced are skipped
            notices=producer,  # what it wrote, for the followers of the query edge
            notice_topic=topics.chunks_indexed,
        )

    sinks = []
    if vectors is not None and "qdrant-sink" in runs:
        # As is, unless DOCSTREAM_FAULT_QDRANT_WRITES.
        sinks.append(sink(with_injected_faults(vectors), "qdrant-sink"))
    if "neo4j-sink" in runs:
        sinks.append(sink(graph, "neo4j-sink"))
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
