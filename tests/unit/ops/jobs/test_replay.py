"""The replay's own logic: what a batch of raw documents becomes with a
profile (how the worker adopts it at the switch is in
tests/unit/streams/test_profile.py; the replay against real Kafka and stores
is in tests/integration/test_replay.py)."""

from __future__ import annotations

from typing import Any

import pytest

from core.settings import ChunkerSettings, KafkaSettings
from core.types import IndexedChunk, WritePlan
from ops.jobs.bulk import BulkSink
from ops.jobs.replay import Replay
from schemas.codec import Codecs, codec_for
from streams.chunker import SentenceChunker
from streams.embedding.tokens import WordCounter
from streams.profile import Processing, Profile
from tests.fakes import FakeEmbedder, FakeMessage, FakeStore

CODECS = Codecs.create()


def document(offset: int, **fields: Any) -> FakeMessage:
    record = {"doc_id": "d1", "version": 1, "text": "", "occurred_at": 1} | fields
    return FakeMessage(codec_for("DocumentEvent").encode(record), offset=offset)


def processing(max_tokens: int = 2) -> Processing:
    chunker = SentenceChunker(
        ChunkerSettings(max_tokens=max_tokens, overlap_tokens=0), WordCounter()
    )
    return Processing(Profile("fake", max_tokens, 0), chunker, FakeEmbedder())


def replay(made: Processing) -> Replay:
    return Replay(made, [], KafkaSettings(), CODECS, lambda _: None, max_text_bytes=1000)


def sink(store: FakeStore) -> BulkSink:
    """A replay's writer to `store`, every document through its idempotent
    `write` (the bulk split itself is tested in test_bulk.py)."""
    return BulkSink("replay-test", store, bulk=store, all_written=True)  # type: ignore[arg-type]


async def test_a_batch_is_chunked_and_embedded_with_the_profile_and_written_to_every_store() -> (
    None
):
    made, stores = processing(), [FakeStore(), FakeStore()]
    run = replay(made)
    await run._handle(
        [sink(s) for s in stores],
        [
            document(0, text="One two. Three four."),
            document(1, doc_id="d2", text="Five six. Seven eight. Nine ten."),
        ],
    )
    assert made.embedder.calls == [
        ["One two.", "Three four.", "Five six.", "Seven eight.", "Nine ten."]
    ]  # type: ignore[attr-defined]
    for store in stores:
        assert [(c.doc_id, c.index, c.chunk_count) for c in store.written] == [
            ("d1", 0, 2),
            ("d1", 1, 2),
            ("d2", 0, 3),
            ("d2", 1, 3),
            ("d2", 2, 3),
        ]
        assert {c.vector[0] for c in store.written} == {8.0, 11.0, 9.0, 12.0}
    assert run.progress.written == 2 and run.chunks == 5


async def test_bad_and_stale_events_are_skipped_and_a_delete_deletes() -> None:
    store = FakeStore()
    run = replay(processing())
    await run._handle(
        [sink(store)],
        [
            document(0, version=3, text="Newest words here."),
            document(1, version=2, text="An older version."),
            FakeMessage(b"not avro", offset=2),
            document(3, doc_id="d2", text="   "),
            document(4, doc_id="d3", version=1, op="DELETE"),
        ],
    )
    assert {c.text for c in store.written} == {"Newest words", "here."}
    [plan] = store.plans
    assert [d.doc_id for d in plan.deletions] == ["d3"]
    assert run.skipped.counts == {"stale": 1, "invalid": 2}


def plan_of(*texts: str) -> WritePlan:
    chunks = [
        IndexedChunk(f"c{i}", f"d{i}", 1, 0, 1, "", text, [0.0], "cid")
        for i, text in enumerate(texts)
    ]
    return WritePlan(upserts=chunks, chunk_counts={c.doc_id: 1 for c in chunks})


async def test_a_refused_document_is_skipped_and_the_rest_of_its_batch_written() -> None:
    store = FakeStore()
    writer = sink(store)
    await writer._write(plan_of("fine", "poison", "also fine"))
    assert [c.text for c in store.written] == ["fine", "also fine"]
    assert writer.skipped == 1


async def test_a_bug_while_writing_is_raised_not_skipped() -> None:
    class Broken(FakeStore):
        async def write(self, plan: WritePlan) -> None:
            raise AttributeError("a bug in our own code")

    with pytest.raises(AttributeError):
        await sink(Broken())._write(plan_of("fine"))
