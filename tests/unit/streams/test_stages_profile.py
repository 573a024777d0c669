"""The stages read the live profile when they need it: after a replay's
switch, the next document is chunked, the next batch embedded and the next
old-model vector skipped by the new profile, with nothing set on the stages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.settings import Topics
from schemas.codec import Codecs, codec_for
from streams.deadletter import DeadLetters
from streams.profile import LiveProfile, Processing, Profile
from streams.stages import ChunkStage, EmbedStage, SinkStage
from tests.fakes import FakeEmbedder, FakeMessage, FakeProducer, FakeStore
from tests.profiles import word_chunker

CODECS = Codecs.create()


class NamedEmbedder(FakeEmbedder):
    def __init__(self, model_name: str) -> None:
        super().__init__()
        self.model_name = model_name  # type: ignore[misc]


def processing(model: str, max_tokens: int) -> Processing:
    return Processing(Profile(model, max_tokens, 0), word_chunker(max_tokens), NamedEmbedder(model))


def document(doc_id: str) -> FakeMessage:
    record = {"doc_id": doc_id, "version": 1, "text": "One two. Three four.", "occurred_at": 1}
    return FakeMessage(codec_for("DocumentEvent").encode(record), key=doc_id.encode())


def chunk(text: str) -> dict[str, Any]:
    return {
        "chunk_id": "c0",
        "doc_id": "d1",
        "version": 1,
        "index": 0,
        "chunk_count": 1,
        "text": text,
        "start": 0,
        "end": len(text),
        "occurred_at": 1,
    }


def chunk_message(text: str) -> FakeMessage:
    return FakeMessage(codec_for("ChunkEvent").encode(chunk(text)), topic="chunks")


def embedded_message(model: str) -> FakeMessage:
    record = {**chunk(model), "vector": [0.1, 0.2, 0.3], "model": model}
    return FakeMessage(codec_for("EmbeddedChunk").encode(record), topic="chunks.embedded")


def models_sent(producer: FakeProducer) -> list[str]:
    sent = producer.on("chunks.embedded")
    return [codec_for("EmbeddedChunk").decode(value)["model"] for _, _, value, _ in sent]


async def test_the_chunk_stage_cuts_with_the_profile_in_use_and_records_its_digest() -> None:
    old, new = processing("m", 200), processing("m", 2)
    live, producer, states = LiveProfile(old), FakeProducer(), dict[str, Any]()
    dead_letters = DeadLetters(producer, CODECS.dead_letters)
    stage = ChunkStage(live, CODECS, producer, dead_letters, Topics(), states)
    await stage.handle(document("before"))
    live.adopt(new)
    await stage.handle(document("after"))
    assert (
        states["before"]["chunk_count"] == 1 and states["before"]["profile"] == old.profile.digest
    )
    assert states["after"]["chunk_count"] == 2 and states["after"]["profile"] == new.profile.digest


async def test_the_embed_stage_embeds_with_the_model_in_use() -> None:
    old, new = processing("old-model", 2), processing("new-model", 2)
    live, producer = LiveProfile(old), FakeProducer()
    dead_letters = DeadLetters(producer, CODECS.dead_letters)
    stage = EmbedStage(live, CODECS, producer, dead_letters, Topics())
    await stage.handle([chunk_message("first")])
    live.adopt(new)
    await stage.handle([chunk_message("second")])
    assert old.embedder.calls == [["first"]]  # type: ignore[attr-defined]
    assert new.embedder.calls == [["second"]]  # type: ignore[attr-defined]
    assert models_sent(producer) == ["old-model", "new-model"]


class SwitchingEmbedder(NamedEmbedder):
    """An embedder during whose batch a replay switches to another profile."""

    def __init__(self, model_name: str, live: list[LiveProfile], to: Processing) -> None:
        super().__init__(model_name)
        self.live, self.to = live, to

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.live[0].adopt(self.to)
        return super().embed(texts)


async def test_vectors_keep_the_name_of_the_model_that_made_them_across_a_switch() -> None:
    """Labelled with the new model, old vectors would pass the sinks' check
    and land in the index the replay rebuilt."""
    new, holder = processing("new-model", 2), list[LiveProfile]()
    switching = SwitchingEmbedder("old-model", holder, new)
    holder.append(LiveProfile(Processing(Profile("old-model", 2, 0), word_chunker(), switching)))
    producer = FakeProducer()
    dead_letters = DeadLetters(producer, CODECS.dead_letters)
    stage = EmbedStage(holder[0], CODECS, producer, dead_letters, Topics())
    await stage.handle([chunk_message("in flight")])
    assert holder[0].embedder is new.embedder, "the switch happened during the batch"
    assert models_sent(producer) == ["old-model"]


async def test_a_sink_skips_the_vectors_of_the_model_a_switch_retired() -> None:
    live, store, producer = LiveProfile(processing("old-model", 2)), FakeStore(), FakeProducer()
    dead_letters = DeadLetters(producer, CODECS.dead_letters)
    stage = SinkStage(store, CODECS, dead_letters, "sink", profile=live)
    await stage.handle([embedded_message("old-model")])
    live.adopt(processing("new-model", 2))
    await stage.handle([embedded_message("old-model"), embedded_message("new-model")])
    assert [c.text for c in store.written] == ["old-model", "new-model"]
    assert stage.superseded == 1 and producer.sent == []
