"""The replay's own logic: what a batch of raw documents becomes with a
profile, and how the worker adopts that profile at the switch (the replay
against real Kafka and stores is in tests/integration/test_replay.py)."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from api.search import QueryEmbeddings, SearchService
from core.settings import ChunkerSettings, KafkaSettings
from ops.jobs.profile import LiveProcessing
from ops.jobs.replay import Processing, Profile, Replay
from schemas.codec import Codecs, codec_for
from streams.app import Stages
from streams.chunker import SentenceChunker
from streams.embedding.tokens import WordCounter
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


async def test_a_batch_is_chunked_and_embedded_with_the_profile_and_written_to_every_store() -> (
    None
):
    made, stores = processing(), [FakeStore(), FakeStore()]
    run = replay(made)
    await run._handle(
        stores,
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
        [store],
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


async def test_at_the_switch_the_worker_takes_the_profile_and_forgets_cached_query_vectors() -> (
    None
):
    old, new = processing(max_tokens=200), processing(max_tokens=5)
    stages = Stages(chunk=_Holder(old.chunker), embed=_Holder(embedder=old.embedder), sinks=[])  # type: ignore[arg-type]
    search = SearchService(old.embedder, FakeStore(), FakeStore(), limits=None)  # type: ignore[arg-type]
    live = LiveProcessing(old.profile, old.embedder, stages, search)
    cache = search.embeddings
    await cache.vector("cached with the old model")
    live.adopt(new)
    assert stages.chunk.chunker is new.chunker
    assert stages.embed is not None and stages.embed.embedder is new.embedder
    assert live.profile.max_tokens == 5 and not live.retired("fake"), "the same model stays"
    assert isinstance(search.embeddings, QueryEmbeddings) and search.embeddings is not cache
    assert search.embeddings.embedder is new.embedder


class _Holder:
    def __init__(self, chunker: Any = None, embedder: Any = None) -> None:
        self.chunker = chunker
        self.embedder = embedder


def test_a_profile_names_the_settings_that_make_it_the_configured_one() -> None:
    profile = Profile("all-MiniLM-L6-v2", 120, 16)
    assert profile.settings() == {
        "DOCSTREAM_EMBED_MODEL": "all-MiniLM-L6-v2",
        "DOCSTREAM_CHUNK_MAX_TOKENS": "120",
        "DOCSTREAM_CHUNK_OVERLAP_TOKENS": "16",
    }
    assert profile.digest != Profile("all-MiniLM-L6-v2", 200, 16).digest


def test_a_state_is_current_when_cut_by_the_profile_in_use() -> None:
    old, new = processing(max_tokens=200), processing(max_tokens=5)
    stages = Stages(chunk=_Holder(old.chunker), embed=None, sinks=[])  # type: ignore[arg-type]
    live = LiveProcessing(old.profile, old.embedder, stages)
    assert stages.chunk.profile == old.profile.digest  # type: ignore[attr-defined]
    assert live.cut_by_current(old.profile.digest) and live.cut_by_current("")
    live.adopt(new)
    assert stages.chunk.profile == new.profile.digest  # type: ignore[attr-defined]
    assert live.cut_by_current(new.profile.digest)
    assert not live.cut_by_current(old.profile.digest)
    assert not live.cut_by_current(""), "written before the replay: by the old profile"


def test_a_replay_with_another_model_retires_the_old_one() -> None:
    old, made = processing(), processing()
    made.embedder.model_name = "newer"  # type: ignore[misc]
    new = Processing(Profile("newer", 2, 0), made.chunker, made.embedder)
    stages = Stages(chunk=_Holder(old.chunker), embed=None, sinks=[])  # type: ignore[arg-type]
    live = LiveProcessing(old.profile, old.embedder, stages)
    live.adopt(new)
    assert live.retired("fake") and not live.retired("newer")
    exported = REGISTRY.get_sample_value(
        "docstream_profile",
        {"model": "newer", "max_tokens": "2", "overlap_tokens": "0", "configured": "false"},
    )
    assert exported == 1, "the profile in use is exported, marked not yet configured"
