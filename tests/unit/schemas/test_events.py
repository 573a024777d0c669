"""The typed events: what a decoded record becomes, and how a record of the
wrong shape is refused (InvalidEvent, the one error a stage dead-letters)."""

from __future__ import annotations

from array import array
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.codec import codec_for
from schemas.events import (
    MAX_MILLIS,
    MIN_MILLIS,
    ChunkEvent,
    DocumentEvent,
    EmbeddedChunk,
    InvalidEvent,
)

CHUNK: dict[str, Any] = {
    "chunk_id": "c-1",
    "doc_id": "d1",
    "version": 3,
    "op": "UPSERT",
    "index": 1,
    "chunk_count": 2,
    "title": "A title",
    "text": "Some words.",
    "start": 10,
    "end": 21,
    "source": "wiki",
    "metadata": {"lang": "en"},
    "links": ["d2"],
    "occurred_at": 1_700_000_000_123,
}
EMBEDDED: dict[str, Any] = {**CHUNK, "model": "mini", "vector": [0.5, -1.0, 0.25]}
DOCUMENT: dict[str, Any] = {"doc_id": "d1", "version": 1, "text": "Hi.", "occurred_at": 5}


def without(record: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != name}


def test_a_chunk_event_survives_the_wire_unchanged() -> None:
    codec = codec_for("ChunkEvent")
    event = ChunkEvent.from_record(codec.decode(codec.encode(CHUNK)))
    assert event.to_record() == CHUNK
    assert ChunkEvent.from_record(event.to_record()) == event


def test_an_embedded_chunk_survives_the_wire_unchanged() -> None:
    codec = codec_for("EmbeddedChunk")
    event = EmbeddedChunk.from_record(codec.decode(codec.encode(EMBEDDED)))
    assert event.chunk == ChunkEvent.from_record(CHUNK)
    assert (event.model, event.vector.tolist()) == ("mini", [0.5, -1.0, 0.25])
    assert event.to_record() == EMBEDDED
    assert EmbeddedChunk.from_record(event.to_record()) == event


def test_the_vector_is_kept_compact_as_32_bit_floats() -> None:
    event = EmbeddedChunk.from_record(EMBEDDED)
    assert isinstance(event.vector, array) and event.vector.itemsize == 4


def test_a_decoded_timestamp_becomes_epoch_milliseconds() -> None:
    at = datetime(2024, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
    event = ChunkEvent.from_record({**CHUNK, "occurred_at": at})
    assert event.occurred_at == int(at.timestamp() * 1000)


def test_fields_with_avro_defaults_may_be_absent() -> None:
    optional = ("op", "title", "source", "metadata", "links")
    event = ChunkEvent.from_record({k: v for k, v in CHUNK.items() if k not in optional})
    assert (event.op, event.title, event.source, event.metadata, event.links) == (
        "UPSERT",
        "",
        "",
        {},
        [],
    )


def test_a_delete_has_no_chunk_id_and_no_vector() -> None:
    delete = {**EMBEDDED, "op": "DELETE", "chunk_id": "", "index": -1, "vector": []}
    event = EmbeddedChunk.from_record(delete)
    assert event.chunk.op == "DELETE" and len(event.vector) == 0


REQUIRED_CHUNK = ["chunk_id", "doc_id", "version", "index", "chunk_count", "text", "start", "end"]


@pytest.mark.parametrize("name", [*REQUIRED_CHUNK, "occurred_at"])
def test_a_chunk_event_without_a_required_field_is_invalid(name: str) -> None:
    with pytest.raises(InvalidEvent, match=f"'{name}' is missing"):
        ChunkEvent.from_record(without(CHUNK, name))


@pytest.mark.parametrize("name", [*REQUIRED_CHUNK, "occurred_at", "model", "vector"])
def test_an_embedded_chunk_without_a_required_field_is_invalid(name: str) -> None:
    with pytest.raises(InvalidEvent, match=f"EmbeddedChunk: field '{name}' is missing"):
        EmbeddedChunk.from_record(without(EMBEDDED, name))


ILL_TYPED = [
    ("chunk_id", 7),
    ("doc_id", None),
    ("version", "3"),
    ("version", True),  # a bool is an int to Python, not to Avro
    ("index", 1.5),
    ("chunk_count", None),
    ("title", b"bytes"),
    ("text", ["words"]),
    ("start", "0"),
    ("end", None),
    ("source", 1),
    ("metadata", ["lang", "en"]),
    ("metadata", {"lang": 1}),
    ("links", "d2"),
    ("links", [1, 2]),
    ("occurred_at", "yesterday"),
    ("occurred_at", 1.5),
]


@pytest.mark.parametrize(("name", "value"), ILL_TYPED)
def test_a_chunk_event_with_an_ill_typed_field_is_invalid(name: str, value: Any) -> None:
    with pytest.raises(InvalidEvent, match=f"field '{name}' must be"):
        ChunkEvent.from_record({**CHUNK, name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        *ILL_TYPED,
        ("model", None),
        ("vector", "0.5"),
        ("vector", 0.5),
        ("vector", [0.5, "1"]),
        ("vector", None),
    ],
)
def test_an_embedded_chunk_with_an_ill_typed_field_is_invalid(name: str, value: Any) -> None:
    with pytest.raises(InvalidEvent, match=f"field '{name}' must be"):
        EmbeddedChunk.from_record({**EMBEDDED, name: value})


@pytest.mark.parametrize("record", [None, "a string", [("doc_id", "d1")], b"\x00"])
def test_something_that_is_not_a_record_is_invalid(record: Any) -> None:
    for kind in (ChunkEvent, EmbeddedChunk, DocumentEvent):
        with pytest.raises(InvalidEvent, match="a record must be a mapping"):
            kind.from_record(record)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"doc_id": " "}, "doc_id must not be empty"),
        ({"version": -1}, "version must be >= 0"),
        ({"op": "MERGE"}, "op must be UPSERT or DELETE"),
        ({"chunk_id": ""}, "an UPSERT needs a chunk_id"),
        ({"occurred_at": MAX_MILLIS + 1}, "occurred_at must be epoch milliseconds from"),
    ],
)
def test_a_chunk_event_that_breaks_a_rule_is_invalid(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        ChunkEvent.from_record({**CHUNK, **change})


def test_an_upsert_without_a_vector_is_invalid() -> None:
    with pytest.raises(InvalidEvent, match="has no vector"):
        EmbeddedChunk.from_record({**EMBEDDED, "vector": []})


def test_a_document_event_reads_its_record_and_writes_it_back() -> None:
    codec = codec_for("DocumentEvent")
    doc = DocumentEvent.from_record(codec.decode(codec.encode(DOCUMENT)))
    assert (doc.doc_id, doc.version, doc.text, doc.occurred_at) == ("d1", 1, "Hi.", 5)
    assert DocumentEvent.from_record(doc.to_record()) == doc


@pytest.mark.parametrize("name", ["doc_id", "version", "occurred_at"])
def test_a_document_event_without_a_required_field_is_invalid(name: str) -> None:
    with pytest.raises(InvalidEvent, match=f"DocumentEvent: field '{name}' is missing"):
        DocumentEvent.from_record(without(DOCUMENT, name))


@pytest.mark.parametrize(
    ("name", "value"),
    [("doc_id", 1), ("version", None), ("text", None), ("metadata", {"a": None}), ("links", 3)],
)
def test_a_document_event_with_an_ill_typed_field_is_invalid(name: str, value: Any) -> None:
    with pytest.raises(InvalidEvent, match=f"field '{name}' must be"):
        DocumentEvent.from_record({**DOCUMENT, name: value})


@pytest.mark.parametrize("millis", [MIN_MILLIS, 0, MAX_MILLIS])
def test_every_accepted_timestamp_decodes(millis: int) -> None:
    codec = codec_for("DocumentEvent")
    doc = DocumentEvent.from_record(codec.decode(codec.encode({**DOCUMENT, "occurred_at": millis})))
    assert doc.occurred_at == millis


@pytest.mark.parametrize("millis", [MIN_MILLIS - 1, MAX_MILLIS + 1, 2**63 - 1])
def test_a_timestamp_no_reader_could_decode_is_refused_when_the_event_is_made(
    millis: int,
) -> None:
    """Avro's long holds it, but a reader turns a timestamp-millis into a
    datetime (years 1 to 9999): such an event would stop every consumer."""
    with pytest.raises(InvalidEvent, match="DocumentEvent: occurred_at must be epoch milliseconds"):
        DocumentEvent.from_record({**DOCUMENT, "occurred_at": millis})
