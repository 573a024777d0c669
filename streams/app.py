"""The Faust app and its agents: documents → chunker → chunks → embedder →
chunks.embedded → (qdrant sink, neo4j sink).

Agents only move messages; what happens to them is in `streams/stages.py`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust

from core.kafka.batches import BatchConsumer
from core.kafka.config import faust_settings
from core.settings import Settings
from streams.stages import ChunkStage, EmbedStage, SinkStage
from streams.startup import until_ready

StartupHook = Callable[[], Awaitable[object]]


class DocstreamApp(faust.App):
    """A Faust app that prepares its dependencies (topics, store schemas) before
    its consumers start, waiting with backoff for any that is not up yet."""

    startup_hooks: Sequence[tuple[str, StartupHook]] = ()

    def __init__(
        self, id: str, *, startup_hooks: Sequence[tuple[str, StartupHook]] = (), **options: Any
    ) -> None:
        super().__init__(id, **options)
        self.startup_hooks = tuple(startup_hooks)

    async def on_first_start(self) -> None:
        await super().on_first_start()
        for name, hook in self.startup_hooks:
            await until_ready(name, hook)


def create_faust_app(
    settings: Settings, *, web: bool, startup_hooks: Sequence[tuple[str, StartupHook]] = ()
) -> DocstreamApp:
    return DocstreamApp(
        settings.kafka.group_id,
        startup_hooks=startup_hooks,
        store="memory://",
        autodiscover=False,
        # Tables live in memory (their changelogs are in Kafka); Faust still
        # makes a data folder, which belongs in no working directory.
        datadir=str(Path(tempfile.gettempdir()) / "docstream-faust-{conf.name}"),
        web_enabled=web,
        web_bind=settings.api.host,
        web_port=settings.api.port,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.kafka.partitions,
        # Faust's own topics (the tables' changelogs) as replicated as docstream's.
        topic_replication_factor=settings.kafka.replication_factor,
        # The brokers and their security, acks=all, lz4 and a request cap that
        # lets a dead letter through: as every docstream client (core/kafka/config.py).
        **faust_settings(settings.kafka),
        # A batch of embeddings on CPU can take seconds; keep the group patient.
        broker_max_poll_interval=600.0,
        stream_wait_empty=False,
    )


@dataclass
class Stages:
    chunk: ChunkStage
    embed: EmbedStage | None  # None: this worker leaves embedding to others of its group
    sinks: list[SinkStage]


class DocumentStates(MutableMapping[str, Any]):
    """The Faust table of document states, whose rows the chunker writes with the
    partition of the event each row comes from.

    `table[key] = value` sends the changelog record to the partition of Faust's
    *current* event. The chunker writes a batch's states once the batch's chunks
    are acknowledged, after its last event: each row names its own event's
    partition instead, so the changelog stays partitioned like `documents` (by
    whatever partitioner its producer used) and a worker given a partition
    recovers exactly that partition's rows."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def write(self, doc_id: str, value: dict[str, Any], partition: int) -> None:
        # What `table[doc_id] = value` does, with the partition named: the
        # changelog record (sent with the producer's next flush, as Faust's own
        # writes are), then the row in memory.
        self.table.send_changelog(partition, doc_id, value)
        self.table.data[doc_id] = value

    def get(self, key: str, default: Any = None) -> Any:
        return self.table.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.table[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.table[key] = value

    def __delitem__(self, key: str) -> None:
        del self.table[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.table)

    def __len__(self) -> int:
        return len(self.table)


def document_state_table(app: faust.App, partitions: int) -> DocumentStates:
    """doc_id → DocumentState (JSON, the app default), changelog-backed: survives restarts.
    Partitioned like the documents topic, so the chunker owns its rows."""
    return DocumentStates(
        app.Table(
            "document_state",
            partitions=partitions,
            key_type=str,
            help="Latest version, content hash and status of every document.",
        )
    )


def raw_topic(app: faust.App, name: str) -> Any:
    return app.topic(
        name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


def register_agents(app: faust.App, settings: Settings, stages: Stages) -> None:
    """The chunker is a Faust agent (it owns the document-state table); the
    embedder and each sink are batch consumers with groups of their own."""
    topics = settings.kafka.topics

    chunking = settings.chunker

    @app.agent(raw_topic(app, topics.documents), name="chunker")
    async def chunker(stream: Any) -> None:
        # A batch of documents at a time, acknowledged by hand: each event only
        # once its chunks are in Kafka and its state is written, so a stop in the
        # middle leaves it to be read again. (`take_events` would acknowledge a
        # batch whose handler failed or was cancelled; `noack_take` leaves that to us.)
        async for events in stream.noack_take(chunking.batch_docs, chunking.batch_within_s):

            async def acknowledge(index: int, batch: Sequence[Any] = events) -> bool:
                return bool(await stream.ack(batch[index]))

            await stages.chunk.handle_batch([event.message for event in events], acknowledge)

    consumers = [(topics.chunks, "embedder", stages.embed.handle)] if stages.embed else []
    consumers += [(topics.chunks_embedded, sink.name, sink.handle) for sink in stages.sinks]
    for topic, name, handle in consumers:
        # The embedder's batch is what one forward pass should hold; a sink's is
        # as much of the backlog as one write can take (its cost is per write).
        batching = settings.embedder if name == "embedder" else settings.sink
        consumer = BatchConsumer(
            name=name,
            topic=topic,
            group_id=f"{settings.kafka.group_id}.{name}",
            kafka=settings.kafka,
            handle=handle,
            max_records=batching.batch_size,
            within_s=batching.batch_within_s,
        )
        app.task(consumer.run)
