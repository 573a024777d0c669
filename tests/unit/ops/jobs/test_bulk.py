"""The bulk path's logic: the reduction of a batch to its final state, which
documents go to the bulk create and which to the idempotent write, the model
check, and the rows of Neo4j's bulk statements. (The stores themselves are
exercised in tests/integration/test_rebuild.py.)"""

from __future__ import annotations

import asyncio
import re
from array import array
from dataclasses import dataclass, field
from typing import Any

import pytest

from core.settings import KafkaSettings
from core.types import DocumentDeletion, IndexedChunk, StoreRejected, WritePlan
from ops.jobs.bulk import BulkSink, reduce_events, split_fresh
from ops.jobs.rebuild import Progress, RebuildRefused, Target, TargetRebuild, tracked
from schemas.codec import Codecs, codec_for
from schemas.fast import FastDecoder
from sinks.neo4j.bulk import document_rows, entity_rows, link_rows

CODEC = codec_for("EmbeddedChunk")


def chunk(doc: str, index: int, version: int = 1, count: int = 2, **more: Any) -> IndexedChunk:
    return IndexedChunk(
        chunk_id=f"{doc}-v{version}-{index}",
        doc_id=doc,
        version=version,
        index=index,
        chunk_count=count,
        title=f"title of {doc}",
        text=more.pop("text", f"text {index}"),
        vector=[0.1, 0.2],
        correlation_id="cid",
        **more,
    )


def test_the_latest_version_wins_and_a_delete_removes() -> None:
    events = [
        chunk("a", 0, 1),
        chunk("a", 1, 1),
        chunk("a", 0, 2, count=1),  # a shorter version 2 replaces both
        chunk("b", 0, 1),
        DocumentDeletion("b", 2, ""),
        chunk("c", 0, 3, count=1),
        chunk("c", 0, 2, count=1),  # late and older: nothing
    ]
    plan = reduce_events(events)
    assert sorted(c.chunk_id for c in plan.upserts) == ["a-v2-0", "c-v3-0"]
    assert [d.doc_id for d in plan.deletions] == ["b"]


def test_a_chunk_past_its_count_is_not_written() -> None:
    plan = reduce_events([chunk("a", 0, count=1), chunk("a", 1, count=1)])
    assert [c.index for c in plan.upserts] == [0]


def test_documents_new_to_the_generation_go_to_the_bulk_create() -> None:
    plan = WritePlan(
        deletions=[DocumentDeletion("gone", 2, ""), DocumentDeletion("never", 2, "")],
        upserts=[chunk("new", 0), chunk("again", 1)],
        chunk_counts={"new": 2, "again": 2},
    )
    fresh, rest = split_fresh(plan, {"again": 1, "gone": 1}, all_written=False)
    assert [c.doc_id for c in fresh] == ["new"]
    assert [c.doc_id for c in rest.upserts] == ["again"]
    assert [d.doc_id for d in rest.deletions] == ["gone"]  # "never" has nothing to delete
    assert rest.chunk_counts == {"again": 2}


def test_after_the_switch_or_on_resume_everything_takes_the_idempotent_path() -> None:
    plan = WritePlan(upserts=[chunk("new", 0)], chunk_counts={"new": 2})
    fresh, rest = split_fresh(plan, {}, all_written=True)
    assert fresh == [] and rest is plan


# --- the sink, over recording fakes -----------------------------------------------


@dataclass
class Record:
    value: bytes
    offset: int = 0
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def record(doc: str, index: int, version: int = 1, count: int = 2, model: str = "m") -> Record:
    op = "UPSERT"
    return Record(
        CODEC.encode(
            {
                "chunk_id": f"{doc}-v{version}-{index}",
                "doc_id": doc,
                "version": version,
                "op": op,
                "index": index,
                "chunk_count": count,
                "text": f"text {index}",
                "start": 0,
                "end": 1,
                "occurred_at": 1_700_000_000_000,
                "model": model,
                "vector": [0.5, 0.25],
            }
        )
    )


class Recorder:
    def __init__(self, refuse: bool = False) -> None:
        self.created: list[list[str]] = []
        self.written: list[WritePlan] = []
        self.refuse = refuse

    async def create(self, chunks: list[IndexedChunk]) -> None:
        if self.refuse:
            raise StoreRejected("test", "refused")
        self.created.append([c.chunk_id for c in chunks])

    async def write(self, plan: WritePlan) -> None:
        self.written.append(plan)


class Embedder:
    model_name = "m"


class Profile:
    """The profile after a replay from the model "retired" to "m"."""

    embedder = Embedder()

    def retired(self, model: str) -> bool:
        return model == "retired"


def sink(store: Recorder, profile: Any = None) -> BulkSink:
    return BulkSink("rebuild-test", store, store, FastDecoder(CODEC), profile=profile)


def test_a_document_straddling_two_batches_is_created_then_completed() -> None:
    store = Recorder()
    bulk = sink(store)
    assert asyncio.run(bulk.handle([record("a", 0), record("b", 0, count=1)])) == 2
    assert store.created == [["a-v1-0", "b-v1-0"]] and store.written == []
    asyncio.run(bulk.handle([record("a", 1)]))
    assert store.created == [["a-v1-0", "b-v1-0"]]
    [plan] = store.written
    assert [c.chunk_id for c in plan.upserts] == ["a-v1-1"] and plan.chunk_counts == {"a": 2}
    assert isinstance(plan.upserts[0].vector, array)  # the decoder's array, not a list


def test_undecodable_events_are_counted_and_skipped() -> None:
    store = Recorder()
    bulk = sink(store)
    asyncio.run(bulk.handle([Record(b"junk", offset=4), record("a", 0, count=1)]))
    assert bulk.skipped == 1 and store.created == [["a-v1-0"]]


def test_vectors_of_a_model_no_replay_retired_are_copied_as_the_live_sink_writes_them() -> None:
    store = Recorder()
    bulk = sink(store, Profile())
    asyncio.run(bulk.handle([record("other", 0, count=1, model="another")]))
    assert store.created == [["other-v1-0"]] and bulk.superseded == set()


def test_a_refused_bulk_create_falls_back_to_the_idempotent_write() -> None:
    store = Recorder(refuse=True)
    asyncio.run(sink(store).handle([record("a", 0, count=1)]))
    assert [c.chunk_id for p in store.written for c in p.upserts] == ["a-v1-0"]


def test_only_the_profiles_model_is_copied_and_a_later_version_clears_a_document() -> None:
    store = Recorder()
    bulk = sink(store, Profile())
    asyncio.run(bulk.handle([record("old", 0, count=1, model="retired"), record("a", 0, count=1)]))
    assert store.created == [["a-v1-0"]] and bulk.superseded == {"old"}
    # Re-embedded later with the model in use: nothing is left over.
    asyncio.run(bulk.handle([record("old", 0, version=2, count=1)]))
    assert bulk.superseded == set()


# --- Neo4j's bulk rows ------------------------------------------------------------


def test_document_rows_hold_each_document_once_with_its_chunks_in_order() -> None:
    rows = document_rows([chunk("a", 1), chunk("b", 0, count=1), chunk("a", 0)])
    assert [r["doc_id"] for r in rows] == ["a", "b"]
    assert [c["index"] for c in rows[0]["chunks"]] == [0, 1]
    assert rows[0]["chunks"][0]["chunk_id"] == "a-v1-0"


def test_links_are_written_once_per_document() -> None:
    rows = link_rows([chunk("a", 0, links=["b", "b", "c"]), chunk("a", 1, links=["b", "b", "c"])])
    assert rows == [{"source": "a", "target": "b"}, {"source": "a", "target": "c"}]


def test_entities_are_aggregated_per_batch() -> None:
    rows = entity_rows(
        [
            chunk("a", 0, text="Ada Lovelace met Charles Babbage."),
            chunk("b", 0, count=1, text="Charles Babbage built engines."),
        ]
    )
    by_key = {r["key"]: r for r in rows}
    assert len(rows) == len(by_key)  # each entity once
    babbage = next(r for key, r in by_key.items() if "babbage" in key)
    assert babbage["chunk_ids"] == ["a-v1-0", "b-v1-0"]


def test_a_rebuild_refuses_its_switch_while_a_document_has_another_models_vectors() -> None:
    target = Target("neo4j", store=None, generations=None, profile=Profile())  # type: ignore[arg-type]
    rebuild = TargetRebuild(target, KafkaSettings(), Codecs.create())
    rebuild._sink = sink(Recorder(), Profile())
    assert rebuild._refusal() is None  # nothing left out: no refusal
    asyncio.run(rebuild._sink.handle([record("old", 0, count=1, model="retired")]))
    refusal = rebuild._refusal()
    assert refusal is not None
    assert re.search(r"another model than 'm'.*docstream replay --topic", str(refusal))


def test_a_refused_job_says_why_without_calling_it_a_failure() -> None:
    async def refuse() -> None:
        raise RebuildRefused("the topic holds another model's vectors")

    progress = Progress("neo4j")
    with pytest.raises(RebuildRefused):
        asyncio.run(tracked("rebuild", progress, refuse(), progress.as_dict))
    assert progress.phase == "refused"
    assert progress.error == "the topic holds another model's vectors"


def test_a_version_older_than_one_written_in_an_earlier_batch_changes_nothing() -> None:
    store = Recorder()
    bulk = sink(store)
    asyncio.run(bulk.handle([record("a", 0, version=3, count=1)]))
    asyncio.run(bulk.handle([record("a", 0, version=2, count=1), record("b", 0, count=1)]))
    assert store.created == [["a-v3-0"], ["b-v1-0"]] and store.written == []
    assert bulk.written == {"a": 3, "b": 1}
