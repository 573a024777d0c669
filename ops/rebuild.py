"""Rebuild an index from `chunks.embedded` into a new generation, then switch.

For each target store (Qdrant, Neo4j or both, each on its own):

1. `begin`: the store makes (or, after an interruption, finds again) the
   generation being built;
2. fill: a consumer group of its own (`<group>.rebuild.<generation>`) reads
   the topic from the start and writes every event into that generation
   through the same `SinkStage` the live sink uses. It never re-embeds. Live
   events arrive on the same topic, so they reach both generations: the live
   sink writes them to the active one, the rebuild to the new one;
3. switch: once the rebuild has caught up, `activate` moves queries and the
   live sink over in one step (the Qdrant alias, the Neo4j generation node);
4. drain: the rebuild reads on to the end offsets taken after the switch, so
   an event that the live sink wrote to the old generation just before the
   switch is in the new one too;
5. drop the old generation.

Offsets are committed after each batch: stopped anywhere before the switch,
the next rebuild resumes the same generation where its group left off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import ConsumerRecord
from confluent_kafka import Consumer
from confluent_kafka import TopicPartition as KafkaPartition

from core.logs import get_logger
from core.metrics import REBUILD_CHUNKS, REBUILD_LAG
from core.settings import KafkaSettings
from core.types import Generations, GraphStore, VectorStore
from schemas.codec import Codecs
from streams.batches import BatchConsumer
from streams.deadletter import RawMessage
from streams.stages import SinkStage

log = get_logger(__name__)
CATCH_UP_LAG = 0  # events left when the switch may happen


class PinnableStore(Protocol):
    def pinned(self, generation: str) -> VectorStore | GraphStore: ...


@dataclass
class Target:
    """One store to rebuild: its live store (for `pinned`) and its generations."""

    name: str  # "qdrant" | "neo4j"
    store: PinnableStore
    generations: Generations


@dataclass
class Progress:
    target: str
    phase: str = "starting"  # starting | filling | switching | draining | done | failed
    generation: str = ""
    previous: str = ""
    written: int = 0
    lag: int | None = None
    started_at: float = field(default_factory=time.monotonic)
    error: str = ""

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started_at
        return self.written / elapsed if elapsed > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        rate = self.rate
        eta = self.lag / rate if self.lag and rate > 0 else (0.0 if self.lag == 0 else None)
        return {
            "target": self.target,
            "phase": self.phase,
            "generation": self.generation,
            "previous": self.previous,
            "written": self.written,
            "offsets_left": self.lag,
            "chunks_per_s": round(rate, 1),
            "eta_s": None if eta is None else round(eta, 1),
            "error": self.error,
        }


@dataclass(frozen=True)
class Watermarks:
    start: int
    end: int
    committed: int | None


class QuietDeadLetters:
    """The live sink has already dead-lettered every poison event once; a
    rebuild counts and logs them but does not publish them again."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.count = 0

    async def send(self, stage: str, message: RawMessage, error: BaseException) -> None:
        self.count += 1
        log.warning(
            "rebuild skipped an event the sink refuses",
            extra={"target": self.target, "offset": message.offset, "error": repr(error)},
        )


class TargetRebuild:
    def __init__(
        self, target: Target, kafka: KafkaSettings, codecs: Codecs, batch: int = 1000
    ) -> None:
        self.target = target
        self.kafka = kafka
        self.codecs = codecs
        self.batch = batch
        self.progress = Progress(target.name)
        self._positions: dict[int, int] = {}  # partition → next offset to handle

    async def run(self) -> Progress:
        try:
            await self._run()
        except asyncio.CancelledError:
            self.progress.phase = "interrupted"
            log.warning("rebuild interrupted; run it again to resume", extra=self._log())
            raise
        except Exception as exc:
            self.progress.phase, self.progress.error = "failed", repr(exc)
            log.exception("rebuild failed", extra=self._log())
            raise
        return self.progress

    async def _run(self) -> None:
        generations = self.target.generations
        gen = await generations.begin()
        self.progress.generation = gen
        self.progress.phase = "filling"
        log.info("rebuild started", extra=self._log())
        stage = SinkStage(
            self.target.store.pinned(gen),
            self.codecs,
            QuietDeadLetters(self.target.name),
            name=f"rebuild-{self.target.name}",
            records_freshness=False,
        )
        consumer = BatchConsumer(
            name=f"rebuild-{self.target.name}",
            topic=self.kafka.topics.chunks_embedded,
            group_id=self._group(),
            bootstrap_servers=self.kafka.bootstrap_servers,
            handle=lambda records: self._handle(stage, records),
            max_records=self.batch,
            within_s=0.2,
        )
        reading = asyncio.create_task(consumer.run())
        try:
            await self._wait_until_caught_up(reading, ends=None)
            self.progress.phase = "switching"
            self.progress.previous = await generations.activate(gen)
            log.info("rebuild switched", extra=self._log())
            self.progress.phase = "draining"
            ends = {p: m.end for p, m in (await asyncio.to_thread(self._watermarks)).items()}
            await self._wait_until_caught_up(reading, ends=ends)
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
        if self.progress.previous != gen:
            await generations.drop(self.progress.previous)
        self.progress.phase = "done"
        log.info("rebuild done", extra=self._log())

    async def _handle(self, stage: SinkStage, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        await stage.handle(records)
        for record in records:
            partition = record.partition
            self._positions[partition] = max(self._positions.get(partition, 0), record.offset + 1)
        self.progress.written += len(records)
        REBUILD_CHUNKS.labels(self.target.name).inc(len(records))

    async def _wait_until_caught_up(
        self, reading: asyncio.Task[None], ends: dict[int, int] | None
    ) -> dict[int, int]:
        """Until the rebuild has read to `ends` (or, when None, to the topic's
        current end); the rebuild's own offsets start where its group left off."""
        while True:
            if reading.done():
                reading.result()  # re-raise what stopped the reader
                raise RuntimeError("the rebuild's reader stopped")
            marks = await asyncio.to_thread(self._watermarks)
            current = ends if ends is not None else {p: m.end for p, m in marks.items()}
            lag = 0
            for partition, end in current.items():
                mark = marks[partition]
                done = self._positions.get(partition, mark.committed or mark.start)
                lag += max(0, end - max(done, mark.start))
            self.progress.lag = lag
            REBUILD_LAG.labels(self.target.name).set(lag)
            if lag <= CATCH_UP_LAG:
                return current
            await asyncio.sleep(0.5)

    def _watermarks(self) -> dict[int, Watermarks]:
        """Per partition of chunks.embedded: first and next offset, and what the
        rebuild's group has committed. Never empty: a topic has partitions."""
        topic = self.kafka.topics.chunks_embedded
        consumer = Consumer(
            {
                "bootstrap.servers": self.kafka.bootstrap_servers,
                "group.id": self._group(),
                "enable.auto.commit": False,
            }
        )
        try:
            metadata = consumer.list_topics(topic, timeout=10)
            partitions = sorted(metadata.topics[topic].partitions)
            if not partitions:
                raise RuntimeError(f"topic {topic} has no partitions yet")
            tps = [KafkaPartition(topic, p) for p in partitions]
            committed = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10)}
            marks = {}
            for p in partitions:
                low, high = consumer.get_watermark_offsets(KafkaPartition(topic, p), timeout=10)
                marks[p] = Watermarks(low, high, committed[p] if committed[p] >= 0 else None)
            return marks
        finally:
            consumer.close()

    def _group(self) -> str:
        return f"{self.kafka.group_id}.rebuild.{self.progress.generation}"

    def _log(self) -> dict[str, Any]:
        return self.progress.as_dict()


class Rebuild:
    """One rebuild of one or more targets, each on its own."""

    def __init__(self, targets: Sequence[TargetRebuild]) -> None:
        self.parts = list(targets)
        self.task: asyncio.Task[list[Progress]] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> list[Progress]:
        return list(await asyncio.gather(*(part.run() for part in self.parts)))

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def report(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "targets": [part.progress.as_dict() for part in self.parts],
        }


def starter(
    kafka: KafkaSettings, codecs: Codecs, targets: dict[str, Callable[[], Target]]
) -> Callable[[str], Rebuild]:
    """What the API's /admin/rebuild calls: target name ("all" for every one)
    → a rebuild, already started on the running event loop."""

    def start(name: str) -> Rebuild:
        chosen = list(targets) if name == "all" else [name]
        rebuild = Rebuild([TargetRebuild(targets[n](), kafka, codecs) for n in chosen])
        rebuild.start()
        return rebuild

    return start
