"""The fast reader of chunks.embedded decodes exactly what the full codec does."""

from __future__ import annotations

import io
from array import array

import pytest
from fastavro import schemaless_writer

from schemas.codec import HEADER_SIZE, codec_for
from schemas.errors import BadMarker, MalformedBody
from schemas.events import EmbeddedChunk
from schemas.fast import FastDecoder, read_floats

RECORD = {
    "chunk_id": "c",
    "doc_id": "d1",
    "version": 3,
    "index": 0,
    "chunk_count": 1,
    "title": "T",
    "text": "hello",
    "start": 0,
    "end": 5,
    "source": "s",
    "metadata": {"k": "v"},
    "links": ["d2"],
    "occurred_at": 1_700_000_000_000,
    "model": "m",
    "vector": [0.5, -0.25, 1.0],
}


def test_the_current_schema_decodes_to_the_same_event_without_resolution() -> None:
    codec = codec_for("EmbeddedChunk")
    fast = FastDecoder(codec)
    data = codec.encode(RECORD)
    record = fast.decode(data)
    assert fast.fast == 1
    assert isinstance(record["vector"], array) and record["vector"].typecode == "f"
    assert record["occurred_at"] == RECORD["occurred_at"]  # epoch ms, no datetime
    assert EmbeddedChunk.from_record(record) == EmbeddedChunk.from_record(codec.decode(data))


def test_a_long_vector_in_several_blocks_is_read_whole() -> None:
    # Avro writers may split an array into blocks, some with their byte size (negative count).
    values = array("f", [float(i) for i in range(10)])
    body = bytearray()
    body += bytes([3 * 2])  # zig-zag 3: a block of three
    body += values[:3].tobytes()
    body += bytes([(7 * 2) - 1]) + bytes([28 * 2])  # zig-zag -7, then 28 bytes
    body += values[3:].tobytes()
    body += b"\x00"
    read, end = read_floats(memoryview(bytes(body)), 0)
    assert read == values and end == len(body)


def test_a_truncated_vector_is_a_malformed_body_as_with_the_full_codec() -> None:
    codec = codec_for("EmbeddedChunk")
    data = codec.encode(RECORD)[:-5]
    with pytest.raises(MalformedBody):
        FastDecoder(codec).decode(data)


def test_trailing_bytes_are_refused() -> None:
    codec = codec_for("EmbeddedChunk")
    with pytest.raises(MalformedBody, match="trailing"):
        FastDecoder(codec).decode(codec.encode(RECORD) + b"\x00")


def test_other_framings_and_schemas_go_to_the_full_codec() -> None:
    codec = codec_for("EmbeddedChunk")
    fast = FastDecoder(codec)
    with pytest.raises(BadMarker):
        fast.decode(b"junk")
    # An unknown fingerprint: the full codec's error, not a guess with the current schema.
    data = codec.encode(RECORD)
    other = data[:2] + bytes(8) + data[HEADER_SIZE:]
    with pytest.raises(Exception, match="unknown schema fingerprint"):
        fast.decode(other)
    assert fast.fast == 0


def test_the_vector_bytes_are_avros_own() -> None:
    # Written by fastavro itself, read by hand: the same floats.
    buffer = io.BytesIO()
    schemaless_writer(buffer, {"type": "array", "items": "float"}, [1.5, -2.0, 0.125])
    read, _ = read_floats(memoryview(buffer.getvalue()), 0)
    assert list(read) == [1.5, -2.0, 0.125]
