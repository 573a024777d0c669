import json
from pathlib import Path

import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form

from schemas.codec import AvroCodec, Codecs, codec_for
from schemas.errors import BadMarker, EncodeError, MalformedBody, UnknownSchema
from schemas.registry import SCHEMA_DIR, SchemaRegistry

CHUNK = {
    "chunk_id": "c",
    "doc_id": "d1",
    "version": 3,
    "index": 0,
    "chunk_count": 1,
    "text": "hello",
    "start": 0,
    "end": 5,
    "occurred_at": 1_700_000_000_000,
}
EXAMPLES = {
    "DocumentEvent": {
        "doc_id": "d1",
        "version": 3,
        "text": "hello",
        "occurred_at": 1_700_000_000_000,
    },
    "ChunkEvent": CHUNK,
    # An embedded chunk is a chunk plus its vector and the model that made it.
    "EmbeddedChunk": {**CHUNK, "model": "m", "vector": [0.5, -0.25]},
    "DeadLetter": {
        "stage": "chunker",
        "error_class": "BadMarker",
        "error_message": "x",
        "topic": "documents",
        "partition": 0,
        "offset": 7,
        "value": b"\x00junk",
        "failed_at": 1_700_000_000_000,
    },
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_schema_round_trips(name: str) -> None:
    codec = codec_for(name)
    data = codec.encode(EXAMPLES[name])
    assert data[:2] == b"\xc3\x01"
    decoded = codec.decode(data)
    for key, value in EXAMPLES[name].items():
        got = decoded[key]
        if key in ("occurred_at", "failed_at"):
            got = int(got.timestamp() * 1000)
        assert got == value


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_fingerprint_is_the_avro_specs_crc64(name: str) -> None:
    raw = json.loads((SCHEMA_DIR / f"{name}.avsc").read_text())
    expected = fingerprint(to_parsing_canonical_form(raw), "CRC-64-AVRO")
    assert codec_for(name).fingerprint_hex == expected


def test_defaults_fill_optional_fields() -> None:
    decoded = codec_for("DocumentEvent").decode(
        codec_for("DocumentEvent").encode(EXAMPLES["DocumentEvent"])
    )
    assert decoded["op"] == "UPSERT"
    assert decoded["metadata"] == {} and decoded["links"] == []


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", BadMarker),
        (b'{"doc_id": "json, not avro"}', BadMarker),
        (b"\xc3\x01" + b"\x00" * 8 + b"body", UnknownSchema),
    ],
)
def test_unreadable_bytes_raise_typed_errors(data: bytes, error: type) -> None:
    with pytest.raises(error):
        codec_for("DocumentEvent").decode(data)


def test_truncated_and_padded_bodies_are_malformed() -> None:
    good = codec_for("DocumentEvent").encode(EXAMPLES["DocumentEvent"])
    with pytest.raises(MalformedBody):
        codec_for("DocumentEvent").decode(good[:-4])
    with pytest.raises(MalformedBody):
        codec_for("DocumentEvent").decode(good + b"\x00")


def test_a_malformed_body_says_what_is_wrong_with_it() -> None:
    codec = codec_for("DocumentEvent")
    upsert = codec.encode({**EXAMPLES["DocumentEvent"], "op": "UPSERT"})
    delete = codec.encode({**EXAMPLES["DocumentEvent"], "op": "DELETE"})
    [at] = [i for i, (a, b) in enumerate(zip(upsert, delete, strict=True)) if a != b]
    unknown_op = upsert[:at] + b"\x0a" + upsert[at + 1 :]  # enum index 5
    doc_id = EXAMPLES["DocumentEvent"]["doc_id"].encode()
    bad_utf8 = upsert.replace(doc_id, b"\xff" * len(doc_id), 1)
    for data, meaning in (
        (unknown_op, "unknown op"),
        (bad_utf8, "not valid UTF-8"),
        (upsert[: len(upsert) // 2], "truncated"),
    ):
        with pytest.raises(MalformedBody, match=meaning):
            codec.decode(data)


def test_record_that_breaks_the_schema_is_an_encode_error() -> None:
    with pytest.raises(EncodeError):
        codec_for("DocumentEvent").encode({"doc_id": "d", "version": "three", "occurred_at": 0})


def test_reads_events_written_with_an_older_schema(tmp_path: Path) -> None:
    """A released older schema (kept in history/) stays readable: fields added
    since then take their defaults."""
    current = json.loads((SCHEMA_DIR / "DocumentEvent.avsc").read_text())
    older = dict(current, fields=[f for f in current["fields"] if f["name"] != "content_type"])
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    (new_dir / "history").mkdir(parents=True)
    old_dir.mkdir()
    (old_dir / "DocumentEvent.avsc").write_text(json.dumps(older))
    (new_dir / "DocumentEvent.avsc").write_text(json.dumps(current))
    (new_dir / "history" / "DocumentEvent.v0.avsc").write_text(json.dumps(older))

    written = AvroCodec("DocumentEvent", SchemaRegistry(old_dir)).encode(EXAMPLES["DocumentEvent"])
    decoded = AvroCodec("DocumentEvent", SchemaRegistry(new_dir)).decode(written)

    assert decoded["content_type"] == "text/plain"
    assert decoded["text"] == "hello"
    with pytest.raises(UnknownSchema):  # without the history, the old writer is unknown
        AvroCodec("DocumentEvent", SchemaRegistry(SCHEMA_DIR)).decode(written)


def confluent_codecs(url: str = "mock://codec-tests") -> Codecs:
    # confluent-kafka's own in-memory registry client answers `mock://` URLs.
    return Codecs.create(url)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_schema_round_trips_in_the_confluent_wire_format(name: str) -> None:
    codecs = confluent_codecs()
    codec = {
        "DocumentEvent": codecs.documents,
        "ChunkEvent": codecs.chunks,
        "EmbeddedChunk": codecs.embedded,
        "DeadLetter": codecs.dead_letters,
    }[name]
    data = codec.encode(EXAMPLES[name])
    assert data[0] == 0 and int.from_bytes(data[1:5], "big") > 0
    decoded = codec.decode(data)
    assert all(decoded[k] == v for k, v in EXAMPLES[name].items() if not k.endswith("_at"))


def test_a_reader_takes_both_framings() -> None:
    codecs = confluent_codecs()
    single = codec_for("DocumentEvent").encode(EXAMPLES["DocumentEvent"])
    assert codecs.documents.decode(single)["doc_id"] == "d1"


def test_confluent_framing_without_a_registry_is_an_unknown_schema() -> None:
    framed = confluent_codecs().documents.encode(EXAMPLES["DocumentEvent"])
    with pytest.raises(UnknownSchema, match="no schema registry"):
        codec_for("DocumentEvent").decode(framed)


def test_an_id_the_registry_does_not_know_is_an_unknown_schema() -> None:
    with pytest.raises(UnknownSchema):
        confluent_codecs().documents.decode(b"\x00\x00\x00\x7f\xff" + b"\x02d")
