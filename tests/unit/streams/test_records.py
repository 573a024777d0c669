"""From a document to what each store keeps: the chunker's ChunkEvents, the
embedder's EmbeddedChunks, the sinks' IndexedChunk, and the store rows (whose
keys existing data and queries read, so they must not drift)."""

from __future__ import annotations

from core.types import Chunk, DocumentDeletion, IndexedChunk
from schemas.codec import codec_for
from schemas.events import DocumentEvent, EmbeddedChunk
from sinks.neo4j.store import _row
from sinks.qdrant.server import _payload
from streams.records import chunk_events, deletion, embedded, sink_event

DOC = DocumentEvent(
    "d1",
    4,
    1_000,
    title="T",
    text="Alpha. Beta.",
    source="wiki",
    metadata={"lang": "en"},
    links=["d2"],
)
CHUNKS = [Chunk("c0", "d1", 0, "Alpha.", 0, 6), Chunk("c1", "d1", 1, "Beta.", 7, 12)]


def test_each_chunk_carries_the_documents_provenance_and_its_own_cut() -> None:
    events = chunk_events(DOC, CHUNKS)
    assert [(e.chunk_id, e.index, e.text, e.start, e.end) for e in events] == [
        ("c0", 0, "Alpha.", 0, 6),
        ("c1", 1, "Beta.", 7, 12),
    ]
    for e in events:
        assert (e.doc_id, e.version, e.op, e.chunk_count, e.occurred_at) == (
            "d1",
            4,
            "UPSERT",
            2,
            1_000,
        )
        assert (e.title, e.source, e.metadata, e.links) == ("T", "wiki", {"lang": "en"}, ["d2"])


def test_a_deletion_is_one_event_with_index_minus_one_and_no_text() -> None:
    event = deletion(DOC)
    assert (event.op, event.chunk_id, event.index, event.chunk_count, event.text) == (
        "DELETE",
        "",
        -1,
        0,
        "",
    )
    codec = codec_for("ChunkEvent")
    assert codec.decode(codec.encode(event.to_record()))["op"] == "DELETE"


def test_an_embedded_chunk_becomes_the_chunk_the_sinks_write() -> None:
    event = embedded(chunk_events(DOC, CHUNKS)[1], [0.5, 0.25], "mini")
    wire = codec_for("EmbeddedChunk")
    decoded = EmbeddedChunk.from_record(wire.decode(wire.encode(event.to_record())))
    assert sink_event(decoded, "corr") == IndexedChunk(
        chunk_id="c1",
        doc_id="d1",
        version=4,
        index=1,
        chunk_count=2,
        title="T",
        text="Beta.",
        vector=[0.5, 0.25],
        correlation_id="corr",
        source="wiki",
        metadata={"lang": "en"},
        links=["d2"],
    )


def test_an_embedded_deletion_becomes_a_document_deletion() -> None:
    event = embedded(deletion(DOC), [], "mini")
    assert sink_event(event, "corr") == DocumentDeletion("d1", 4, "corr")


CHUNK = IndexedChunk("c1", "d1", 4, 1, 2, "T", "Beta.", [0.5], "corr", "wiki", {"a": "b"}, ["d2"])


def test_the_qdrant_payload_keys_are_the_ones_filters_and_hits_read() -> None:
    assert _payload(CHUNK) == {
        "doc_id": "d1",
        "version": 4,
        "chunk_index": 1,
        "chunk_count": 2,
        "title": "T",
        "text": "Beta.",
        "source": "wiki",
        "metadata": {"a": "b"},
        "correlation_id": "corr",
        "links": ["d2"],
    }


def test_the_neo4j_row_has_the_properties_the_chunk_statements_set() -> None:
    assert _row(CHUNK) == {
        "chunk_id": "c1",
        "doc_id": "d1",
        "index": 1,
        "chunk_count": 2,
        "version": 4,
        "title": "T",
        "text": "Beta.",
        "source": "wiki",
        "correlation_id": "corr",
    }
