"""Replay: re-process the raw documents (re-chunk and re-embed) into a new
generation of both indexes, then switch to it — for a changed chunker or model.

A rebuild (`ops/jobs/rebuild.py`) copies the vectors already on `chunks.embedded`;
a replay makes new ones from `documents`, the topic of record, with a
*profile* (chunker settings and embedding model) that may differ from the
live one. It follows the rebuild's steps with both stores at once, since the
chunk ids of the vector and the graph index must come from the same chunker:

1. `begin` a generation in Qdrant and in Neo4j (or find the unfinished ones);
2. fill: a consumer group of its own (`<group>.replay.<generation>.<profile>`)
   reads `documents` from the start; each batch is chunked and embedded with
   the profile and written to both new generations at once, through the bulk
   path of a rebuild (`bulk.py`: documents new to a generation created in
   bulk, the others written the idempotent way). Later versions win, a
   DELETE removes the document; events the chunker dead-lettered are skipped.
   Live documents arrive on the same topic, so they reach the new generations
   too, while the live pipeline keeps the active ones up to date;
3. switch: `activate` both new generations, then hand the profile to the
   worker (`on_switch`): from then on its chunker, embedder and query
   embedder are the profile's, and its sinks skip vectors of the old model
   still in flight (their documents were re-embedded here);
4. drain to the end offsets taken after the switch, then drop the old
   generations.

Interrupted, it resumes: the same profile finds the same group and offsets.
Before the switch each new generation records the profile in its store; a
worker that restarts reads it back from the active generation
(`ops/jobs/profile.py`), and the report says which settings make it the
configured one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from core.correlation import CORRELATION_HEADER, decode_headers
from core.kafka.catchup import Records, TopicCatchUp
from core.logs import get_logger
from core.metrics import REBUILD_CHUNKS, REBUILD_LAG
from core.settings import KafkaSettings
from core.types import DocumentDeletion, SinkEvent
from ops.jobs.bulk import BulkSink, bulk_for, reduce_events
from ops.jobs.profile import stored_profile
from ops.jobs.rebuild import Job, Progress, Target, tracked
from schemas.codec import Codecs
from schemas.errors import CodecError
from schemas.events import ChunkEvent, DocumentEvent, InvalidEvent
from streams.profile import Processing
from streams.records import chunk_events, embedded, sink_event
from streams.stages import check_indexable

log = get_logger(__name__)
TARGET = "replay"  # the label of its progress and metrics


@dataclass
class Skipped:
    """Events a replay leaves out, by reason (the live chunker already
    dead-lettered the bad ones; a stale version lost to a later one)."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str, offset: int, error: str = "") -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if reason != "stale":
            log.warning(
                "replay skipped a document",
                extra={"reason": reason, "offset": offset, "error": error},
            )


class Replay(Job):
    """One replay of `documents` into new generations of `targets` (see the
    module docstring). Has the `running`/`cancel`/`report` of a Rebuild."""

    def __init__(
        self,
        processing: Processing,
        targets: list[Target],
        kafka: KafkaSettings,
        codecs: Codecs,
        on_switch: Callable[[Processing], None],
        max_text_bytes: int,
        batch: int = 64,
    ) -> None:
        self.processing = processing
        self.targets = targets
        self.kafka = kafka
        self.codecs = codecs
        self.on_switch = on_switch
        self.max_text_bytes = max_text_bytes
        self.batch = batch
        self.progress = Progress(TARGET, unit="documents")
        self.chunks = 0
        self.skipped = Skipped()
        self._latest: dict[str, int] = {}  # doc_id → the highest version seen

    def start(self) -> None:
        self.launch(self.run())

    def report(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "kind": "replay",
            "profile": asdict(self.processing.profile),
            "configure": self.processing.profile.settings(),
            "chunks_written": self.chunks,
            "skipped": dict(self.skipped.counts),
            "targets": [self.progress.as_dict()],
        }

    async def run(self) -> Progress:
        return await tracked("replay", self.progress, self._run(), self._log)

    async def _run(self) -> None:
        generations = [await t.generations.begin() for t in self.targets]
        self.progress.generation = " ".join(
            f"{t.name}={g}" for t, g in zip(self.targets, generations, strict=True)
        )
        stores = [t.store.pinned(g) for t, g in zip(self.targets, generations, strict=True)]
        # A generation that holds data already is one an interrupted replay began.
        resumed = [
            (await t.generations.size(g)).get("chunks", 0) > 0
            for t, g in zip(self.targets, generations, strict=True)
        ]
        sinks = [
            BulkSink(f"{TARGET}-{t.name}", store, bulk_for(store), all_written=again)
            for t, store, again in zip(self.targets, stores, resumed, strict=True)
        ]
        group = f"{self.kafka.group_id}.replay.{generations[0]}.{self.processing.profile.digest}"
        reader = TopicCatchUp(
            "replay",
            self.kafka,
            self.kafka.topics.documents,
            group,
            lambda records: self._handle(sinks, records),
            self.batch,
        )
        self.progress.phase = "filling"
        log.info("replay started", extra=self._log())
        reader.start()
        try:
            await reader.wait_until_caught_up(None, self._lag)
            self.progress.phase = "switching"
            for target, gen in zip(self.targets, generations, strict=True):
                await target.generations.record_profile(gen, stored_profile(self.processing))
            previous = [
                await t.generations.activate(g)
                for t, g in zip(self.targets, generations, strict=True)
            ]
            self.on_switch(self.processing)  # no await since the last activate
            for sink in sinks:  # the live sinks write these generations now
                sink.everything_written()
            self.progress.previous = " ".join(
                f"{t.name}={p}" for t, p in zip(self.targets, previous, strict=True)
            )
            log.info("replay switched", extra=self._log())
            self.progress.phase = "draining"
            await reader.wait_until_caught_up(await reader.end_offsets(), self._lag)
        finally:
            await reader.stop()
        for target, old, new in zip(self.targets, previous, generations, strict=True):
            if old != new:
                await target.generations.drop(old)
        await asyncio.to_thread(reader.forget)
        self.progress.phase = "done"
        log.info("replay done", extra=self._log())

    async def _handle(self, sinks: list[BulkSink], records: Records) -> None:
        docs = [doc for record in records if (doc := self._document(record)) is not None]
        # Chunking and the model run in a thread: the loop keeps serving queries.
        events = await asyncio.to_thread(self._events, docs)
        plan = reduce_events(events)
        if plan:  # both stores at once, each at its own pace within the batch
            await asyncio.gather(*(sink.apply(plan) for sink in sinks))
        self.progress.written += len(records)
        self.chunks += len(plan.upserts)
        REBUILD_CHUNKS.labels(TARGET).inc(len(plan.upserts))

    def _document(self, record: Any) -> tuple[DocumentEvent, str] | None:
        try:
            doc = DocumentEvent.from_record(self.codecs.documents.decode(record.value))
            check_indexable(doc, self.max_text_bytes)
        except (CodecError, InvalidEvent) as exc:  # what the chunker dead-letters
            self.skipped.add("invalid", record.offset, repr(exc))
            return None
        if doc.version < self._latest.get(doc.doc_id, -1):
            self.skipped.add("stale", record.offset)
            return None
        self._latest[doc.doc_id] = doc.version
        correlation_id = decode_headers(record.headers).get(CORRELATION_HEADER, "")
        return doc, correlation_id

    def _events(self, docs: list[tuple[DocumentEvent, str]]) -> list[SinkEvent]:
        """The sink events of `docs`, in order, made with the profile."""
        # Per document: its chunks, or its deletion.
        made: list[list[ChunkEvent] | DocumentDeletion] = []
        for doc, correlation_id in docs:
            if doc.op == "DELETE":
                made.append(DocumentDeletion(doc.doc_id, doc.version, correlation_id))
            else:
                chunks = self.processing.chunker.chunk(doc.doc_id, doc.text)
                made.append(chunk_events(doc, chunks))
        texts = [c.text for item in made if isinstance(item, list) for c in item]
        vectors = iter(self.processing.embedder.embed(texts) if texts else [])
        model = self.processing.embedder.model_name
        events: list[SinkEvent] = []
        for (_, correlation_id), item in zip(docs, made, strict=True):
            if isinstance(item, DocumentDeletion):
                events.append(item)
                continue
            for chunk in item:
                events.append(sink_event(embedded(chunk, next(vectors), model), correlation_id))
        return events

    def _lag(self, lag: int) -> None:
        self.progress.lag = lag
        REBUILD_LAG.labels(TARGET).set(lag)

    def _log(self) -> dict[str, Any]:
        return {**self.progress.as_dict(), "profile": asdict(self.processing.profile)}
