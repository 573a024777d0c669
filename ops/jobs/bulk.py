"""The bulk path of a rebuild (`rebuild.py`) and a replay's fill (`replay.py`):
how a batch of events reaches a generation that is being filled.

1. Decode with the fast reader (`schemas/fast.py`); an event the live sink
   dead-lettered already is counted and skipped.
2. Reduce the batch to its final state (`sinks/plan.py`: per document the
   latest version wins, a DELETE removes it), less chunks past their count, so
   nothing is written twice.
3. Leave out vectors of a model a replay retired, as the live sink does (it
   skips them as "superseded"): a document whose final state carries them is
   left out and remembered, and the rebuild refuses to switch while any is
   (`superseded`): the topic cannot reproduce the index. Vectors of any other
   model are what the live sink wrote, so they are copied like it.
4. Split: documents this fill has not written yet go to the store's bulk path
   (`BulkCreate`: plain creates, no deletes); a document it wrote in an earlier
   batch (its chunks straddle batches, or a later version came) goes through
   the store's ordinary idempotent `write`, which replaces what is there.

What the generation holds is tracked by document id and version, in memory; a
rebuild that resumes a generation already holding data (after a restart), and
every batch after the switch (when the live sink writes the generation too),
takes the idempotent path for everything: slower, never wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.correlation import CORRELATION_HEADER, decode_headers
from core.logs import get_logger
from core.types import (
    BulkCreate,
    CurrentProfile,
    IndexedChunk,
    SinkEvent,
    StoreRejected,
    WritePlan,
)
from schemas.errors import CodecError
from schemas.events import EmbeddedChunk, InvalidEvent
from schemas.fast import FastDecoder
from sinks.neo4j.bulk import Neo4jBulk
from sinks.neo4j.store import Neo4jGraphStore
from sinks.plan import plan_writes
from sinks.qdrant.bulk import QdrantBulk
from sinks.retry import until_written
from streams.records import indexed_chunk, sink_event

log = get_logger(__name__)


def reduce_events(events: Sequence[SinkEvent]) -> WritePlan:
    """The final state of a batch: `plan_writes`, less any chunk at or past its
    document's chunk count (the live path would write it, then drop it)."""
    plan = plan_writes(events)
    plan.upserts = [c for c in plan.upserts if c.index < plan.chunk_counts.get(c.doc_id, 0)]
    return plan


def split_fresh(
    plan: WritePlan, written: dict[str, int], all_written: bool
) -> tuple[list[IndexedChunk], WritePlan]:
    """(chunks of documents the generation does not hold: for `create`; the rest
    of the plan: for the idempotent `write`). A DELETE of a document the
    generation does not hold has nothing to remove: it is dropped."""
    if all_written:
        return [], plan
    fresh = [c for c in plan.upserts if c.doc_id not in written]
    rest = WritePlan(
        deletions=[d for d in plan.deletions if d.doc_id in written],
        upserts=[c for c in plan.upserts if c.doc_id in written],
        chunk_counts={d: n for d, n in plan.chunk_counts.items() if d in written},
    )
    return fresh, rest


def newer_only(plan: WritePlan, written: dict[str, int]) -> WritePlan:
    """The plan less chunks of a version older than the one an earlier batch
    wrote (a late event): across batches too, the latest version wins."""
    stale = {c.doc_id for c in plan.upserts if c.version < written.get(c.doc_id, -1)}
    if not stale:
        return plan
    return WritePlan(
        deletions=plan.deletions,
        upserts=[c for c in plan.upserts if c.doc_id not in stale],
        chunk_counts={d: n for d, n in plan.chunk_counts.items() if d not in stale},
    )


@dataclass
class BulkSink:
    """One store's bulk writer for one generation (see the module docstring)."""

    name: str
    store: Any  # the pinned store: its idempotent `write(plan)`
    bulk: BulkCreate
    decoder: FastDecoder | None = None  # None: the caller hands plans (a replay)
    profile: CurrentProfile | None = None
    all_written: bool = False  # True: every document may be there already
    written: dict[str, int] = field(default_factory=dict)  # doc_id → version written
    superseded: set[str] = field(default_factory=set)  # docs left out: another model
    skipped: int = 0  # events that cannot be decoded (the live sink dead-lettered them)

    def everything_written(self) -> None:
        """From now on, every batch takes the idempotent path (after the switch)."""
        self.all_written = True

    def decode(self, records: Sequence[Any]) -> tuple[list[SinkEvent], dict[str, str]]:
        """The batch's sink events, and the model of each chunk."""
        assert self.decoder is not None, "a sink without a decoder takes plans"
        events: list[SinkEvent] = []
        models: dict[str, str] = {}
        for record in records:
            try:
                event = EmbeddedChunk.from_record(self.decoder.decode(record.value))
            except (CodecError, InvalidEvent) as exc:
                self.skipped += 1
                log.warning(
                    "rebuild skipped an event the sink refuses",
                    extra={"target": self.name, "offset": record.offset, "error": repr(exc)},
                )
                continue
            correlation_id = decode_headers(record.headers).get(CORRELATION_HEADER, "")
            models[event.chunk.chunk_id] = event.model
            events.append(bulk_event(event, correlation_id))
        return events, models

    def of_model(self, plan: WritePlan, models: dict[str, str]) -> WritePlan:
        """The plan less documents whose final chunks carry vectors of a model a
        replay retired (step 3)."""
        profile = self.profile
        if profile is None:
            return plan
        other = {c.doc_id for c in plan.upserts if profile.retired(models.get(c.chunk_id, ""))}
        self.superseded -= {c.doc_id for c in plan.upserts} - other
        self.superseded -= {d.doc_id for d in plan.deletions}
        self.superseded |= other
        if not other:
            return plan
        return WritePlan(
            deletions=plan.deletions,
            upserts=[c for c in plan.upserts if c.doc_id not in other],
            chunk_counts={d: n for d, n in plan.chunk_counts.items() if d not in other},
        )

    async def handle(self, records: Sequence[Any]) -> int:
        """Write one batch; returns how many chunks the generation received."""
        events, models = self.decode(records)
        return await self.apply(self.of_model(reduce_events(events), models))

    async def apply(self, plan: WritePlan) -> int:
        """Write one reduced plan (see the module docstring, step 4)."""
        plan = newer_only(plan, self.written)
        fresh, rest = split_fresh(plan, self.written, self.all_written)
        if rest:  # first: a document it replaces may be one `fresh` links to
            await self._write(rest)
        if fresh:
            try:
                await until_written(self.name, lambda: self.bulk.create(fresh))
            except StoreRejected:
                log.exception("bulk write refused; writing the batch the idempotent way")
                await self._write(WritePlan(upserts=fresh, chunk_counts=plan.chunk_counts))
        for deletion in plan.deletions:
            self.written.pop(deletion.doc_id, None)
        for chunk in plan.upserts:
            self.written[chunk.doc_id] = chunk.version
        return len(plan.upserts)

    async def _write(self, plan: WritePlan) -> None:
        """The idempotent path; a refused batch is retried per document, and a
        document the store still refuses is logged and left out."""
        try:
            await until_written(self.name, lambda: self.store.write(plan))
            return
        except StoreRejected:
            log.exception("rebuild batch refused; writing its documents one by one")
        docs = [*(d.doc_id for d in plan.deletions), *(c.doc_id for c in plan.upserts)]
        for doc_id in dict.fromkeys(docs):  # in order, each once
            one = _of_document(plan, doc_id)
            try:
                await until_written(self.name, lambda p=one: self.store.write(p))  # type: ignore[misc]
            except StoreRejected as exc:
                self.skipped += 1
                log.warning(
                    "rebuild left out a document the store refuses",
                    extra={"target": self.name, "doc_id": doc_id, "error": repr(exc)},
                )


def _of_document(plan: WritePlan, doc_id: str) -> WritePlan:
    return WritePlan(
        deletions=[d for d in plan.deletions if d.doc_id == doc_id],
        upserts=[c for c in plan.upserts if c.doc_id == doc_id],
        chunk_counts={d: n for d, n in plan.chunk_counts.items() if d == doc_id},
    )


def bulk_event(event: EmbeddedChunk, correlation_id: str) -> SinkEvent:
    """`sink_event`, keeping the decoder's array: a list of 384 Python floats
    per chunk was a fifth of the decode's cost, and both stores take the array."""
    if event.chunk.op == "DELETE":
        return sink_event(event, correlation_id)
    return indexed_chunk(event, correlation_id, event.vector)


def bulk_for(store: Any) -> BulkCreate:
    """The bulk path of a pinned store: Neo4j's, or either Qdrant engine's."""
    if isinstance(store, Neo4jGraphStore):
        return Neo4jBulk(store)
    return QdrantBulk(store)
