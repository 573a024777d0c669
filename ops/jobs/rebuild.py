"""Rebuild an index from `chunks.embedded` into a new generation, then switch.

For each target store (Qdrant, Neo4j or both, each on its own):

1. `begin`: the store makes (or, after an interruption, finds again) the
   generation being built;
2. fill: a consumer group of its own (`<group>.rebuild.<generation>`) reads
   the topic from the start in large batches and writes them into that
   generation through the bulk path (`bulk.py`: each batch reduced to its
   final state, documents new to the generation created in bulk, the rest
   written the live sink's idempotent way). It never re-embeds, and leaves
   out vectors of a model a replay retired, as the live sink does. Live
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

With a start point (`--from-offset/--from-time`), a rebuild is a repair
instead: it re-applies the events from there on to the active generation, with
no new generation and no switch. Writes are idempotent, so a repair can only
bring a store up to date (after it was restored from a backup, say).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from core.kafka.catchup import Records, TopicCatchUp
from core.logs import get_logger
from core.metrics import REBUILD_CHUNKS, REBUILD_LAG
from core.positions import StartAt
from core.settings import KafkaSettings
from core.types import CurrentProfile, Generations, GraphStore, VectorStore
from ops.jobs.bulk import BulkSink, bulk_for
from schemas.codec import Codecs
from schemas.fast import FastDecoder
from streams.deadletter import RawMessage
from streams.stages import SinkStage

log = get_logger(__name__)


class PinnableStore(Protocol):
    def pinned(self, generation: str) -> VectorStore | GraphStore: ...


@dataclass
class Target:
    """One store to rebuild: its live store (for `pinned`) and its generations."""

    name: str  # "qdrant" | "neo4j"
    store: PinnableStore
    generations: Generations
    # Whether a replay replaced a model: its vectors must not come back through
    # a rebuild (one that meets them stops before its switch). None: any model.
    profile: CurrentProfile | None = None
    # The profile the new generation records before its switch (`ops/jobs/profile.py`).
    describe: Callable[[], dict[str, Any]] | None = None


@dataclass
class Progress:
    target: str
    # starting | filling | switching | draining | repairing | done | refused | failed | interrupted
    phase: str = "starting"
    generation: str = ""
    previous: str = ""
    written: int = 0
    lag: int | None = None
    started_at: float = field(default_factory=time.monotonic)
    error: str = ""
    unit: str = "chunks"  # what `written` counts: a replay counts documents

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
            "unit": self.unit,
            "offsets_left": self.lag,
            "per_s": round(rate, 1),
            "eta_s": None if eta is None else round(eta, 1),
            "error": self.error,
        }


class RebuildRefused(Exception):
    """The topic cannot reproduce the index (its vectors are of a model a replay
    replaced): the operator's input to change, not a bug, so no traceback."""


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
    """One store's rebuild into a new generation, or, given `start`, a repair:
    the events from `start` on re-applied to the active generation (after a
    store was restored from a backup, say); a repair has no switch."""

    def __init__(
        self,
        target: Target,
        kafka: KafkaSettings,
        codecs: Codecs,
        batch: int = 1000,
        start: StartAt | None = None,
        bulk_batch: int = 5000,
    ) -> None:
        self.target = target
        self.kafka = kafka
        self.codecs = codecs
        self.batch = batch
        self.start = start
        self.bulk_batch = bulk_batch  # a rebuild's batches: bulk writes want thousands of rows
        self.progress = Progress(target.name)
        self._sink: BulkSink | None = None

    async def run(self) -> Progress:
        work = self._repair() if self.start is not None else self._rebuild()
        return await tracked("rebuild", self.progress, work, self._log)

    async def _rebuild(self) -> None:
        generations = self.target.generations
        gen = await generations.begin()
        self.progress.generation = gen
        self.progress.phase = "filling"
        # A generation that holds data already is one an interrupted rebuild began.
        resumed = (await generations.size(gen)).get("chunks", 0) > 0
        log.info("rebuild started", extra={**self._log(), "resumed": resumed})
        reader = self._bulk_reader(self.target.store.pinned(gen), gen, resumed)
        reader.start()
        try:
            await reader.wait_until_caught_up(None, self._lag)
            if refusal := self._refusal():
                await self._abandon(reader)
                raise refusal
            self.progress.phase = "switching"
            if self.target.describe is not None:
                await generations.record_profile(gen, self.target.describe())
            self.progress.previous = await generations.activate(gen)
            assert self._sink is not None
            # The live sink writes this generation now: no more bulk creates.
            self._sink.everything_written()
            log.info("rebuild switched", extra=self._log())
            self.progress.phase = "draining"
            await reader.wait_until_caught_up(await reader.end_offsets(), self._lag)
        finally:
            await reader.stop()
        if self.progress.previous != gen:
            await generations.drop(self.progress.previous)
        await asyncio.to_thread(reader.forget)
        self.progress.phase = "done"
        log.info("rebuild done", extra=self._log())

    async def _repair(self) -> None:
        assert self.start is not None
        self.progress.generation = (await self.target.generations.state()).active
        # The group is named after the start point: the same command resumes it.
        label = self.start.describe().replace(" ", "-").replace(":", "_").replace(",", ".")
        live = cast(VectorStore | GraphStore, self.target.store)  # the live store pins itself
        reader = self._reader(live, f"repair.{self.progress.generation}.{label}")
        self.progress.phase = "repairing"
        begins = await asyncio.to_thread(reader.start_group_at, self.start)
        log.info(
            "repair started", extra={**self._log(), "from": self.start.describe(), "at": begins}
        )
        reader.start()
        try:
            await reader.wait_until_caught_up(await reader.end_offsets(), self._lag)
        finally:
            await reader.stop()
        await asyncio.to_thread(reader.forget)  # the same command repairs again later
        self.progress.phase = "done"
        log.info("repair done", extra=self._log())

    def _refusal(self) -> RebuildRefused | None:
        superseded = self._sink.superseded if self._sink is not None else set()
        if not superseded or self.target.profile is None:
            return None
        model = self.target.profile.embedder.model_name
        return RebuildRefused(
            f"{len(superseded)} documents on {self.kafka.topics.chunks_embedded} (e.g. "
            f"{sorted(superseded)[0]!r}) have vectors of another model than {model!r}, "
            "the one in use (a replay changed it): the topic cannot rebuild this index. "
            "Rebuild from the documents instead, with `docstream replay --topic documents`"
        )

    async def _abandon(self, reader: TopicCatchUp) -> None:
        """A refused rebuild leaves nothing behind: its generation (never active)
        and its group go, so the next rebuild starts afresh."""
        await reader.stop()
        await self.target.generations.abandon()
        await asyncio.to_thread(reader.forget)

    def _bulk_reader(
        self, store: VectorStore | GraphStore, gen: str, resumed: bool
    ) -> TopicCatchUp:
        sink = BulkSink(
            f"rebuild-{self.target.name}",
            store,
            bulk_for(store),
            FastDecoder(self.codecs.embedded),
            profile=self.target.profile,
            all_written=resumed,
        )
        self._sink = sink

        async def handle(records: Records) -> None:
            written = await sink.handle(records)
            self.progress.written += len(records)
            REBUILD_CHUNKS.labels(self.target.name).inc(written)

        return TopicCatchUp(
            f"rebuild-{self.target.name}",
            self.kafka,
            self.kafka.topics.chunks_embedded,
            f"{self.kafka.group_id}.rebuild.{gen}",
            handle,
            self.bulk_batch,
        )

    def _reader(self, store: VectorStore | GraphStore, suffix: str) -> TopicCatchUp:
        stage = SinkStage(
            store,
            self.codecs,
            QuietDeadLetters(self.target.name),
            name=f"rebuild-{self.target.name}",
            records_freshness=False,
            profile=self.target.profile,
        )
        return TopicCatchUp(
            f"rebuild-{self.target.name}",
            self.kafka,
            self.kafka.topics.chunks_embedded,
            f"{self.kafka.group_id}.{suffix}",
            lambda records: self._handle(stage, records),
            self.batch,
        )

    async def _handle(self, stage: SinkStage, records: Records) -> None:
        await stage.handle(records)
        self.progress.written += len(records)
        REBUILD_CHUNKS.labels(self.target.name).inc(len(records))

    def _lag(self, lag: int) -> None:
        self.progress.lag = lag
        REBUILD_LAG.labels(self.target.name).set(lag)

    def _log(self) -> dict[str, Any]:
        return self.progress.as_dict()


async def tracked(
    job: str, progress: Progress, work: Awaitable[None], described: Callable[[], dict[str, Any]]
) -> Progress:
    """Run `work`, keeping `progress` and the log told of an interruption or a failure."""
    try:
        await work
    except RebuildRefused as exc:
        progress.phase, progress.error = "refused", str(exc)
        log.error(f"{job} refused: {exc}", extra=described())
        raise
    except asyncio.CancelledError:
        progress.phase = "interrupted"
        log.warning(f"{job} interrupted; run it again to resume", extra=described())
        raise
    except Exception as exc:
        progress.phase, progress.error = "failed", repr(exc)
        log.exception(f"{job} failed", extra=described())
        raise
    return progress


class Job:
    """A task on the worker's loop that the admin routes follow and interrupt."""

    task: asyncio.Task[Any] | None = None

    def launch(self, work: Coroutine[Any, Any, Any]) -> None:
        self.task = asyncio.create_task(work)

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()


class Rebuild(Job):
    """One rebuild of one or more targets, each on its own."""

    def __init__(self, targets: Sequence[TargetRebuild]) -> None:
        self.parts = list(targets)

    def start(self) -> None:
        self.launch(self._run())

    async def _run(self) -> list[Progress]:
        # Every part runs to its own end: a plain gather would end the job at the
        # first refusal or failure, reporting it finished while another part
        # still filled its generation, unwatched.
        parts = (part.run() for part in self.parts)
        outcomes = await asyncio.gather(*parts, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome  # each part's progress says what happened to it
        return cast(list[Progress], outcomes)

    def report(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "targets": [part.progress.as_dict() for part in self.parts],
        }


def starter(
    kafka: KafkaSettings, codecs: Codecs, targets: dict[str, Callable[[], Target]]
) -> Callable[[str, StartAt | None], Rebuild]:
    """What the API's /admin/rebuild calls: target name ("all" for every one)
    and an optional start point → a rebuild, already started on the running
    event loop."""

    def start(name: str, at: StartAt | None) -> Rebuild:
        chosen = list(targets) if name == "all" else [name]
        rebuild = Rebuild([TargetRebuild(targets[n](), kafka, codecs, start=at) for n in chosen])
        rebuild.start()
        return rebuild

    return start
