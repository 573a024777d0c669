from typing import Any

import pytest
from prometheus_client import REGISTRY

from core.backoff import Backoff
from core.correlation import CORRELATION_HEADER, decode_headers
from core.settings import ChunkerSettings, Topics
from core.types import WritePlan
from schemas.codec import AvroCodec, Codecs, codec_for
from schemas.confluent import ConfluentRegistry
from schemas.events import ChunkEvent
from streams.chunker import SentenceChunker
from streams.deadletter import DeadLetters, dead_letter_record
from streams.embedding.tokens import WordCounter
from streams.records import embedded
from streams.stages import ChunkStage, EmbedStage, SinkStage
from tests.fakes import FakeEmbedder, FakeMessage, FakeProducer, FakeStore
from tests.profiles import FixedProfile

TOPICS = Topics()
CODECS = Codecs.create()
HEADERS = [(CORRELATION_HEADER, b"corr-42"), ("traceparent", b"00-abc-def-01")]


def dead_letters(producer: FakeProducer) -> DeadLetters:
    return DeadLetters(producer, CODECS.dead_letters)


def document(**overrides: Any) -> bytes:
    record = {
        "doc_id": "d1",
        "version": 1,
        "text": "One two. Three four. Five six.",
        "occurred_at": 1,
    } | overrides
    return codec_for("DocumentEvent").encode(record)


def chunk_stage(producer: FakeProducer, states: dict[str, Any] | None = None) -> ChunkStage:
    chunker = SentenceChunker(ChunkerSettings(max_tokens=2, overlap_tokens=0), WordCounter())
    table = {} if states is None else states
    return ChunkStage(
        FixedProfile(chunker),
        CODECS,
        producer,
        dead_letters(producer),
        TOPICS,
        table,
    )


async def test_a_document_becomes_chunk_events_that_inherit_its_headers() -> None:
    producer = FakeProducer()
    await chunk_stage(producer).handle(FakeMessage(document(), headers=HEADERS))
    sent = producer.on("chunks")
    assert len(sent) == 3
    records = [codec_for("ChunkEvent").decode(value) for _, _, value, _ in sent]
    assert [r["index"] for r in records] == [0, 1, 2]
    assert {r["chunk_count"] for r in records} == {3}
    for _, key, _, headers in sent:
        assert key == b"d1"
        assert decode_headers(headers)[CORRELATION_HEADER] == "corr-42"
        assert decode_headers(headers)["traceparent"] == "00-abc-def-01"


async def test_bytes_that_are_not_avro_go_to_the_dead_letter_topic_untouched() -> None:
    producer = FakeProducer()
    await chunk_stage(producer).handle(FakeMessage(b"not avro at all", headers=HEADERS, offset=9))
    assert producer.on("chunks") == []
    [(topic, _, value, headers)] = producer.sent
    assert topic == "documents.dlq"
    letter = codec_for("DeadLetter").decode(value)
    assert letter["value"] == b"not avro at all"
    assert letter["error_class"] == "BadMarker"
    assert letter["offset"] == 9 and letter["correlation_id"] == "corr-42"
    assert "dlq_reason" in decode_headers(headers)


async def test_empty_text_and_negative_versions_are_dead_letters() -> None:
    producer = FakeProducer()
    await chunk_stage(producer).handle(FakeMessage(document(text="  ")))
    await chunk_stage(producer).handle(FakeMessage(document(version=-1)))
    reasons = [codec_for("DeadLetter").decode(v)["error_message"] for _, _, v, _ in producer.sent]
    assert len(reasons) == 2
    assert "empty" in reasons[0] and "version" in reasons[1]


async def test_a_text_over_the_limit_is_a_dead_letter_not_thousands_of_chunks() -> None:
    producer = FakeProducer()
    stage = chunk_stage(producer)
    stage.max_text_bytes = 40
    await stage.handle(FakeMessage(document(text="word " * 20)))
    [(topic, _, value, _)] = producer.sent
    assert topic == "documents.dlq"
    assert "100 bytes; the limit is 40" in codec_for("DeadLetter").decode(value)["error_message"]


def test_a_dead_letter_keeps_the_head_of_a_gigantic_original(monkeypatch: Any) -> None:
    monkeypatch.setattr("streams.deadletter.MAX_ORIGINAL_BYTES", 10)
    message = FakeMessage(b"x" * 25, topic="documents", offset=7)
    record = dead_letter_record("chunker", message, ValueError("too big"))
    assert record["value"] == b"x" * 10
    assert "cut from 25 to 10 bytes" in record["error_message"]
    assert "documents:0:7" in record["error_message"]


def chunk_message(text: str, index: int = 0) -> FakeMessage:
    record = {
        "chunk_id": f"c{index}",
        "doc_id": "d1",
        "version": 1,
        "index": index,
        "chunk_count": 2,
        "text": text,
        "start": 0,
        "end": len(text),
        "occurred_at": 1,
    }
    return FakeMessage(codec_for("ChunkEvent").encode(record), topic="chunks", headers=HEADERS)


def embed_stage(producer: FakeProducer, embedder: FakeEmbedder) -> EmbedStage:
    return EmbedStage(
        FixedProfile(embedder=embedder), CODECS, producer, dead_letters(producer), TOPICS
    )


async def test_the_embedder_embeds_a_batch_in_one_call() -> None:
    producer, embedder = FakeProducer(), FakeEmbedder()
    stage = embed_stage(producer, embedder)
    await stage.handle(
        [chunk_message("alpha", 0), FakeMessage(b"junk", topic="chunks"), chunk_message("be", 1)]
    )
    assert embedder.calls == [["alpha", "be"]]
    embedded = [
        codec_for("EmbeddedChunk").decode(v) for _, _, v, _ in producer.on("chunks.embedded")
    ]
    assert [e["vector"][0] for e in embedded] == [5.0, 2.0]
    assert len(producer.on("chunks.dlq")) == 1


def embedded_message(text: str, index: int) -> FakeMessage:
    chunk = ChunkEvent.from_record(codec_for("ChunkEvent").decode(chunk_message(text, index).value))
    value = codec_for("EmbeddedChunk").encode(embedded(chunk, [0.1, 0.2], "fake").to_record())
    return FakeMessage(value, topic="chunks.embedded", headers=HEADERS, offset=index)


async def test_a_refused_batch_is_retried_one_by_one_so_only_the_offender_is_dead_lettered() -> (
    None
):
    producer, store = FakeProducer(), FakeStore()
    stage = SinkStage(store, CODECS, dead_letters(producer), name="test-sink")
    await stage.handle(
        [embedded_message("good", 0), embedded_message("poison", 1), embedded_message("fine", 2)]
    )
    assert [c.text for c in store.written] == ["good", "fine"]
    assert all(c.correlation_id == "corr-42" for c in store.written)
    [(topic, _, value, _)] = producer.sent
    assert topic == "chunks.embedded.dlq"
    assert codec_for("DeadLetter").decode(value)["offset"] == 1


async def test_a_store_that_is_down_is_waited_for_not_dead_lettered(monkeypatch: Any) -> None:
    monkeypatch.setattr("core.backoff.Backoff", lambda: Backoff(initial_s=0.001, maximum_s=0.002))
    producer, store = FakeProducer(), FakeStore(down_for=3)
    stage = SinkStage(store, CODECS, dead_letters(producer), name="test-sink")
    await stage.handle([embedded_message("good", 0)])
    assert [c.text for c in store.written] == ["good"]
    assert producer.sent == []


class BuggyStore(FakeStore):
    """A FakeStore whose writes of a chunk saying "bug" fail with a bug of ours
    (unless the store refuses the plan first, for a chunk saying "poison")."""

    async def write(self, plan: WritePlan) -> None:
        texts = [c.text for c in plan.upserts]
        if any("bug" in t for t in texts) and not any("poison" in t for t in texts):
            raise TypeError("a bug in our own write")
        await super().write(plan)


async def test_a_failure_that_is_no_refusal_propagates_and_nothing_is_dead_lettered() -> None:
    producer, store = FakeProducer(), BuggyStore()
    stage = SinkStage(store, CODECS, dead_letters(producer), name="bug-sink")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await stage.handle([embedded_message("good", 0), embedded_message("bug", 1)])
    assert store.written == [] and producer.sent == []


async def test_one_by_one_dead_letters_only_refusals_and_raises_anything_else() -> None:
    producer, store = FakeProducer(), BuggyStore()
    stage = SinkStage(store, CODECS, dead_letters(producer), name="bug-sink-2")  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # the batch is refused (poison), then one by one: the bug
        await stage.handle([embedded_message("poison", 0), embedded_message("bug", 1)])
    [(topic, _, _, _)] = producer.sent
    assert topic == "chunks.embedded.dlq", "the refused chunk is dead-lettered, the bug is not"


def freshness_count(stage: str) -> float:
    return REGISTRY.get_sample_value("docstream_freshness_seconds_count", {"sink": stage}) or 0.0


async def test_only_the_live_path_records_freshness() -> None:
    live = SinkStage(FakeStore(), CODECS, dead_letters(FakeProducer()), name="fresh-live")
    replay = SinkStage(
        FakeStore(),
        CODECS,
        dead_letters(FakeProducer()),
        name="fresh-replay",
        records_freshness=False,
    )
    for stage in (live, replay):
        await stage.handle([embedded_message("good", 0), embedded_message("fine", 1)])
    assert freshness_count("fresh-live") == 2
    assert freshness_count("fresh-replay") == 0


async def test_a_sink_skips_vectors_of_a_model_a_replay_replaced() -> None:
    """After a replay switched models, old-model vectors still in flight must
    not land in the new generation (their documents were re-embedded)."""
    store, profile = FakeStore(), FixedProfile()
    stage = SinkStage(
        store,
        CODECS,
        dead_letters(FakeProducer()),
        name="model-sink",
        profile=profile,
    )
    await stage.handle([embedded_message("model in use", 0)])
    profile.retired_models.add("fake")  # the messages' model
    await stage.handle([embedded_message("replaced model", 1)])
    assert [c.text for c in store.written] == ["model in use"]
    assert stage.superseded == 1


async def test_an_older_or_unchanged_version_sends_nothing() -> None:
    producer, states = FakeProducer(), dict[str, Any]()
    stage = chunk_stage(producer, states)
    await stage.handle(FakeMessage(document(version=5)))
    sent = len(producer.sent)
    await stage.handle(FakeMessage(document(version=4, text="Different now.")))
    await stage.handle(FakeMessage(document(version=6)))  # same content, newer version
    assert len(producer.sent) == sent
    assert states["d1"]["version"] == 6 and states["d1"]["status"] == "unchanged"


async def test_a_delete_sends_one_delete_chunk_event() -> None:
    producer, states = FakeProducer(), dict[str, Any]()
    stage = chunk_stage(producer, states)
    await stage.handle(FakeMessage(document(version=1)))
    producer.sent.clear()
    await stage.handle(FakeMessage(document(version=2, op="DELETE", text="")))
    [(topic, _, value, _)] = producer.sent
    record = codec_for("ChunkEvent").decode(value)
    assert (topic, record["op"], record["doc_id"], record["chunk_count"]) == (
        "chunks",
        "DELETE",
        "d1",
        0,
    )
    assert states["d1"]["status"] == "deleted"


async def test_a_poison_event_is_recorded_against_its_key() -> None:
    producer, states = FakeProducer(), dict[str, Any]()
    await chunk_stage(producer, states).handle(FakeMessage(b"junk", key=b"d9"))
    assert states["d9"]["status"] == "dead_lettered"
    assert states["d9"]["reason"].startswith("BadMarker")


async def test_a_delete_passes_the_embedder_without_being_embedded() -> None:
    producer, embedder = FakeProducer(), FakeEmbedder()
    stage = embed_stage(producer, embedder)
    deletion = {
        "chunk_id": "",
        "doc_id": "d1",
        "version": 2,
        "index": -1,
        "chunk_count": 0,
        "text": "",
        "start": 0,
        "end": 0,
        "occurred_at": 1,
        "op": "DELETE",
    }
    message = FakeMessage(codec_for("ChunkEvent").encode(deletion), topic="chunks")
    await stage.handle([chunk_message("alpha", 0), message])
    assert embedder.calls == [["alpha"]]
    out = [codec_for("EmbeddedChunk").decode(v) for _, _, v, _ in producer.on("chunks.embedded")]
    assert [(r["op"], len(r["vector"])) for r in out] == [("UPSERT", 3), ("DELETE", 0)]


class FlakyRegistryClient:
    """A schema registry that refuses the first `down_for` calls."""

    def __init__(self, down_for: int) -> None:
        self.down_for = down_for
        self.calls = 0

    def register(self, subject: str, avro_text: str) -> int:
        self.calls += 1
        if self.calls <= self.down_for:
            raise ConnectionError("registry is not answering")
        return 7


async def test_a_registry_that_is_down_is_waited_for_not_dead_lettered(monkeypatch: Any) -> None:
    monkeypatch.setattr(
        "streams.registry_wait.Backoff", lambda: Backoff(initial_s=0.001, maximum_s=0.002)
    )
    client = FlakyRegistryClient(down_for=3)
    registry = ConfluentRegistry(client)
    codecs = Codecs(
        documents=AvroCodec("DocumentEvent", confluent_registry=registry),
        chunks=AvroCodec("ChunkEvent", confluent_registry=registry),
        embedded=AvroCodec("EmbeddedChunk", confluent_registry=registry),
        dead_letters=AvroCodec("DeadLetter", confluent_registry=registry),
    )
    producer = FakeProducer()
    chunker = SentenceChunker(ChunkerSettings(max_tokens=2, overlap_tokens=0), WordCounter())
    stage = ChunkStage(
        FixedProfile(chunker),
        codecs,
        producer,
        DeadLetters(producer, codecs.dead_letters),
        TOPICS,
        {},
    )
    await stage.handle(FakeMessage(document(), headers=HEADERS))
    assert client.calls == 4
    assert len(producer.on("chunks")) == 3
    assert producer.on("documents.dlq") == []
    assert all(value[:1] == b"\x00" for _, _, value, _ in producer.on("chunks"))


def broken(*_: Any) -> Any:
    """A mapper with a bug in it: what docstream's own code must not dead-letter."""
    raise AttributeError("'NoneType' object has no attribute 'text'")


async def test_a_bug_in_the_chunkers_mapping_fails_loudly_and_consumes_nothing(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr("streams.chunk_stage.chunk_events", broken)
    producer, states = FakeProducer(), dict[str, Any]()
    with pytest.raises(AttributeError):
        await chunk_stage(producer, states).handle(FakeMessage(document(), headers=HEADERS))
    assert producer.sent == []  # neither chunks nor a dead letter
    assert states == {}  # the document's state is unwritten: it will be processed again


async def test_a_bug_in_reading_a_document_is_not_taken_for_bad_data(monkeypatch: Any) -> None:
    def lookup_bug(record: Any) -> Any:
        return record["no such field"]  # a KeyError from our code, not from the record's shape

    monkeypatch.setattr("streams.chunk_stage.DocumentEvent.from_record", lookup_bug)
    producer, states = FakeProducer(), dict[str, Any]()
    with pytest.raises(KeyError):
        await chunk_stage(producer, states).handle(FakeMessage(document()))
    assert producer.sent == [] and states == {}


async def test_a_bug_in_the_embedders_mapping_fails_loudly(monkeypatch: Any) -> None:
    monkeypatch.setattr("streams.stages.embedded", broken)
    producer = FakeProducer()
    stage = embed_stage(producer, FakeEmbedder())
    with pytest.raises(AttributeError):
        await stage.handle([chunk_message("alpha", 0)])
    assert producer.sent == []


async def test_a_bug_in_the_sinks_mapping_fails_loudly(monkeypatch: Any) -> None:
    monkeypatch.setattr("streams.stages.sink_event", broken)
    producer, store = FakeProducer(), FakeStore()
    stage = SinkStage(store, CODECS, dead_letters(producer), name="broken-sink")
    with pytest.raises(AttributeError):
        await stage.handle([embedded_message("good", 0)])
    assert producer.sent == [] and store.written == []


async def test_an_embedded_chunk_of_the_wrong_shape_is_a_dead_letter() -> None:
    """Decodable, but an UPSERT without a vector: bad data, not a bug."""
    chunk = ChunkEvent.from_record(codec_for("ChunkEvent").decode(chunk_message("x", 0).value))
    record = {**chunk.to_record(), "model": "fake", "vector": []}
    message = FakeMessage(codec_for("EmbeddedChunk").encode(record), topic="chunks.embedded")
    producer, store = FakeProducer(), FakeStore()
    await SinkStage(store, CODECS, dead_letters(producer), name="shape-sink").handle([message])
    [(topic, _, value, _)] = producer.sent
    assert topic == "chunks.embedded.dlq" and store.written == []
    assert codec_for("DeadLetter").decode(value)["error_class"] == "InvalidEvent"
