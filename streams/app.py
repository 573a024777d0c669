"""The Faust app and its agents: documents → chunker → chunks → embedder →
chunks.embedded → (qdrant sink, neo4j sink).

Agents only move messages; what happens to them is in `streams/stages.py`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faust

from core.settings import Settings
from sinks.retry import until_written
from streams.stages import ChunkStage, EmbedStage, SinkStage

StartupHook = Callable[[], Awaitable[object]]


class DocstreamApp(faust.App):
    """A Faust app that prepares its dependencies (topics, store schemas) before
    its consumers start, waiting with backoff for any that is not up yet."""

    startup_hooks: Sequence[tuple[str, StartupHook]] = ()

    async def on_first_start(self) -> None:
        await super().on_first_start()
        for name, hook in self.startup_hooks:
            await until_written(name, hook)


def faust_broker(bootstrap_servers: str) -> list[str]:
    return [
        f"kafka://{server.strip()}" for server in bootstrap_servers.split(",") if server.strip()
    ]


def create_faust_app(settings: Settings, *, web: bool) -> DocstreamApp:
    return DocstreamApp(
        settings.kafka.group_id,
        broker=faust_broker(settings.kafka.bootstrap_servers),
        store="memory://",
        autodiscover=False,
        web_enabled=web,
        web_bind=settings.api.host,
        web_port=settings.api.port,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.kafka.partitions,
        topic_replication_factor=1,
        producer_acks=-1,
        # A batch of embeddings on CPU can take seconds; keep the group patient.
        broker_max_poll_interval=600.0,
        stream_wait_empty=False,
    )


@dataclass
class Stages:
    chunk: ChunkStage
    embed: EmbedStage
    sinks: list[SinkStage]


def document_state_table(app: faust.App, partitions: int) -> Any:
    """doc_id → DocumentState (JSON, the app default), changelog-backed: survives restarts.
    Partitioned like the documents topic, so the chunker owns its rows."""
    return app.Table(
        "document_state",
        partitions=partitions,
        key_type=str,
        help="Latest version, content hash and status of every document.",
    )


def raw_topic(app: faust.App, name: str) -> Any:
    return app.topic(
        name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


def register_agents(app: faust.App, settings: Settings, stages: Stages) -> None:
    topics = settings.kafka.topics
    batch, within = settings.embedder.batch_size, settings.embedder.batch_within_s

    @app.agent(raw_topic(app, topics.documents), name="chunker")
    async def chunker(stream: Any) -> None:
        async for event in stream.events():
            await stages.chunk.handle(event.message)

    @app.agent(raw_topic(app, topics.chunks), name="embedder")
    async def embedder(stream: Any) -> None:
        async for events in stream.take_events(batch, within=within):
            await stages.embed.handle([e.message for e in events])

    for sink in stages.sinks:
        _register_sink(app, raw_topic(app, topics.chunks_embedded), sink, batch, within)


def _register_sink(app: faust.App, topic: Any, sink: SinkStage, batch: int, within: float) -> None:
    @app.agent(topic, name=sink.name)
    async def write(stream: Any) -> None:
        async for events in stream.take_events(batch, within=within):
            await sink.handle([e.message for e in events])
