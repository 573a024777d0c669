"""Spans continue the trace of each event's `traceparent`, and nothing is
installed without an OTLP endpoint. Spans go to the SDK's in-memory exporter."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from core import tracing
from core.correlation import CORRELATION_HEADER, TRACEPARENT_HEADER, decode_headers
from core.settings import ChunkerSettings, Topics
from schemas.codec import Codecs, codec_for
from schemas.events import ChunkEvent
from streams.chunker import SentenceChunker
from streams.deadletter import DeadLetters
from streams.embedding.tokens import WordCounter
from streams.records import embedded
from streams.stages import ChunkStage, EmbedStage, SinkStage
from tests.fakes import FakeMessage, FakeProducer, FakeStore
from tests.profiles import FixedProfile

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
CODECS = Codecs.create()


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """An SDK provider for this test only: the global one is never touched."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_provider", lambda: provider)
    return exporter


def ids(span: ReadableSpan) -> tuple[str, str, str]:
    """(trace id, span id, parent span id) as hex; the parent is '' for a root."""
    context = span.get_span_context()
    assert context is not None
    parent = f"{span.parent.span_id:016x}" if span.parent else ""
    return f"{context.trace_id:032x}", f"{context.span_id:016x}", parent


def traceparent_of(headers: Any) -> str:
    return decode_headers(headers)[TRACEPARENT_HEADER]


def document(doc_id: str = "d1") -> bytes:
    record = {"doc_id": doc_id, "version": 1, "text": "One two. Three four.", "occurred_at": 1}
    return codec_for("DocumentEvent").encode(record)


async def chunk(headers: list[tuple[str, bytes]]) -> FakeProducer:
    producer = FakeProducer()
    chunker = SentenceChunker(ChunkerSettings(max_tokens=2, overlap_tokens=0), WordCounter())
    stage = ChunkStage(
        FixedProfile(chunker),
        CODECS,
        producer,  # type: ignore[arg-type]
        DeadLetters(producer, CODECS.dead_letters),
        Topics(),
        {},
    )
    await stage.handle(FakeMessage(document(), key=b"d1", headers=headers))
    return producer


async def test_a_message_with_a_traceparent_gets_a_child_span_of_it(
    exported: InMemorySpanExporter,
) -> None:
    await chunk([(CORRELATION_HEADER, b"corr-1"), (TRACEPARENT_HEADER, TRACEPARENT.encode())])
    [span] = exported.get_finished_spans()
    trace_id, _, parent = ids(span)
    assert (span.name, span.kind) == ("docstream.chunk", SpanKind.CONSUMER)
    assert (trace_id, parent) == (TRACE_ID, PARENT_ID)
    assert span.parent is not None and span.parent.is_remote
    assert span.attributes is not None
    assert span.attributes["messaging.system"] == "kafka"
    assert span.attributes["messaging.destination.name"] == "documents"
    assert span.attributes["docstream.correlation_id"] == "corr-1"
    assert span.attributes["docstream.doc_id"] == "d1"
    assert span.attributes["docstream.stage"] == "chunker"


async def test_a_message_without_a_traceparent_starts_a_new_trace(
    exported: InMemorySpanExporter,
) -> None:
    await chunk([(CORRELATION_HEADER, b"corr-1")])
    [span] = exported.get_finished_spans()
    trace_id, _, parent = ids(span)
    assert parent == "" and trace_id != TRACE_ID


async def test_outgoing_events_carry_the_new_span_as_their_parent(
    exported: InMemorySpanExporter,
) -> None:
    producer = await chunk([(TRACEPARENT_HEADER, TRACEPARENT.encode())])
    [span] = exported.get_finished_spans()
    trace_id, span_id, _ = ids(span)
    sent = producer.on("chunks")
    assert len(sent) == 2
    assert {traceparent_of(headers) for *_, headers in sent} == {f"00-{trace_id}-{span_id}-01"}


def chunk_message(doc_id: str, index: int, traceparent: str) -> FakeMessage:
    record = {
        "chunk_id": f"{doc_id}:{index}",
        "doc_id": doc_id,
        "version": 1,
        "index": index,
        "chunk_count": 2,
        "text": f"text {index} of {doc_id}",
        "start": 0,
        "end": 10,
        "occurred_at": 1,
    }
    value = CODECS.chunks.encode(record)
    return FakeMessage(
        value, key=doc_id.encode(), topic="chunks", headers=[("traceparent", traceparent.encode())]
    )


async def test_a_batch_gets_one_child_span_per_upstream_trace_and_continues_each(
    exported: InMemorySpanExporter,
) -> None:
    other = f"00-{'1' * 32}-{'2' * 16}-01"
    batch = [chunk_message("a", 0, TRACEPARENT), chunk_message("b", 0, other)]
    batch.append(chunk_message("a", 1, TRACEPARENT))
    producer = FakeProducer()
    stage = EmbedStage(
        FixedProfile(),
        CODECS,
        producer,  # type: ignore[arg-type]
        DeadLetters(producer, CODECS.dead_letters),
        Topics(),
    )
    await stage.handle(batch)
    spans = {ids(s)[0]: s for s in exported.get_finished_spans()}
    assert set(spans) == {TRACE_ID, "1" * 32}
    mine = spans[TRACE_ID]
    assert mine.name == "docstream.embed" and ids(mine)[2] == PARENT_ID
    assert mine.attributes is not None
    assert mine.attributes["messaging.batch.message_count"] == 2
    assert mine.attributes["docstream.batch_size"] == 3
    out = {key: traceparent_of(h) for _, key, _, h in producer.on("chunks.embedded")}
    for key, trace_id in ((b"a", TRACE_ID), (b"b", "1" * 32)):
        _, span_id, _ = ids(spans[trace_id])
        assert out[key] == f"00-{trace_id}-{span_id}-01"


async def test_a_sink_span_is_a_child_of_the_span_that_embedded_its_input(
    exported: InMemorySpanExporter,
) -> None:
    chunk = ChunkEvent.from_record(CODECS.chunks.decode(chunk_message("a", 0, TRACEPARENT).value))
    record = embedded(chunk, [1.0, 0, 0], "m").to_record()
    message = FakeMessage(
        CODECS.embedded.encode(record),
        key=b"a",
        topic="chunks.embedded",
        headers=[("traceparent", TRACEPARENT.encode())],
    )
    producer = FakeProducer()
    stage = SinkStage(
        FakeStore(), CODECS, DeadLetters(producer, CODECS.dead_letters), "qdrant-sink"
    )
    await stage.handle([message])
    [span] = exported.get_finished_spans()
    assert span.name == "docstream.qdrant-sink"
    assert ids(span)[0::2] == (TRACE_ID, PARENT_ID)


def test_a_failed_batch_marks_each_of_its_spans_as_an_error(
    exported: InMemorySpanExporter,
) -> None:
    batch = [chunk_message("a", 0, TRACEPARENT), chunk_message("b", 0, "")]
    with (
        pytest.raises(RuntimeError),
        tracing.batch_spans("docstream.embed", "embedder", batch),
    ):
        raise RuntimeError("model fell over")
    spans = exported.get_finished_spans()
    assert len(spans) == 2
    for span in spans:
        assert span.status.status_code is StatusCode.ERROR
        assert [e.name for e in span.events] == ["exception"]


def test_without_an_endpoint_nothing_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    installed: list[object] = []
    monkeypatch.setattr(trace, "set_tracer_provider", installed.append)
    assert tracing.configure_tracing("svc", {}) is None
    disabled = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_SDK_DISABLED": "true"}
    assert tracing.configure_tracing("svc", disabled) is None
    assert installed == []


def test_without_a_provider_spans_are_free_and_headers_pass_through() -> None:
    headers = {TRACEPARENT_HEADER: TRACEPARENT}
    with tracing.stage_span("docstream.chunk", headers, {}) as span:
        assert not span.is_recording()
        assert tracing.with_current_trace(headers) == headers
    with tracing.batch_spans("docstream.embed", "embedder", [chunk_message("a", 0, "x")]) as spans:
        assert spans.continued(headers) == headers


def test_with_an_endpoint_a_provider_is_installed_for_the_named_service(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    installed: list[TracerProvider] = []
    monkeypatch.setattr(trace, "set_tracer_provider", installed.append)
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "https://user:secret@collector:4318/?token=t",
        "OTEL_SERVICE_NAME": "indexer-7",
    }
    with caplog.at_level("INFO", logger="core.tracing"):
        provider = tracing.configure_tracing("svc", env)
    try:
        assert provider is not None and installed == [provider]
        assert provider.resource.attributes["service.name"] == "indexer-7"
        [line] = [r for r in caplog.records if r.name == "core.tracing"]
        assert line.otlp_endpoint == "https://collector:4318/v1/traces"  # type: ignore[attr-defined]
        assert "secret" not in caplog.text and "token" not in caplog.text
    finally:
        if provider is not None:
            provider.shutdown()


def test_the_traces_endpoint_wins_over_the_base_endpoint() -> None:
    base = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}
    assert tracing.traces_endpoint(base) == "http://c:4318/v1/traces"
    both = {**base, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:9/x"}
    assert tracing.traces_endpoint(both) == "http://t:9/x"
