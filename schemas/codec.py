"""Avro on the wire, in one of two self-describing framings:

- single-object encoding (default): `C3 01`, the 8-byte CRC-64-AVRO fingerprint
  of the writer's schema (little endian), then the Avro body;
- the Confluent wire format (when a schema registry is configured): `00`, the
  4-byte big-endian registry id of the writer's schema, then the Avro body.

A reader accepts both framings, finds the writer's schema (by fingerprint among
the current and released schemas, or by id in the registry) and resolves it
against its own schema, so events written with an older or newer compatible
schema decode to the reader's shape."""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from schemas import confluent
from schemas.confluent import ConfluentRegistry
from schemas.errors import BadMarker, EncodeError, MalformedBody, UnknownSchema
from schemas.registry import Schema, SchemaRegistry, default_registry

MARKER = b"\xc3\x01"
HEADER_SIZE = len(MARKER) + 8


class AvroCodec:
    def __init__(
        self,
        name: str,
        registry: SchemaRegistry | None = None,
        confluent_registry: ConfluentRegistry | None = None,
    ) -> None:
        self.registry = registry or default_registry()
        self.schema: Schema = self.registry.current(name)
        self.confluent = confluent_registry

    @property
    def fingerprint_hex(self) -> str:
        return self.schema.fingerprint_hex

    @property
    def wire_format(self) -> str:
        return "confluent" if self.confluent else "single-object"

    def encode(self, record: dict[str, Any]) -> bytes:
        buffer = io.BytesIO()
        if self.confluent is not None:
            buffer.write(confluent.MAGIC)
            buffer.write(self.confluent.id_of(self.schema).to_bytes(4, "big"))
        else:
            buffer.write(MARKER)
            buffer.write(self.schema.fingerprint_bytes)
        try:
            schemaless_writer(buffer, self.schema.parsed, record, strict_allow_default=True)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise EncodeError(f"{self.schema.name}: {exc}") from exc
        return buffer.getvalue()

    def decode(self, data: bytes | None) -> dict[str, Any]:
        data = data or b""
        if data.startswith(MARKER) and len(data) >= HEADER_SIZE:
            writer, body = self._single_object_writer(data), data[HEADER_SIZE:]
        elif data.startswith(confluent.MAGIC) and len(data) >= confluent.HEADER_SIZE:
            writer, body = self._confluent_writer(data), data[confluent.HEADER_SIZE :]
        else:
            raise BadMarker(
                f"neither Avro single-object encoding (c301) nor the Confluent wire format (00): "
                f"{len(data)} bytes starting {data[:2].hex() or '(empty)'}"
            )
        return self._read(writer, body)

    def _single_object_writer(self, data: bytes) -> Any:
        writer = self.registry.by_fingerprint(int.from_bytes(data[2:HEADER_SIZE], "little"))
        if writer is None:
            raise UnknownSchema(f"unknown schema fingerprint {data[2:HEADER_SIZE].hex()}")
        return writer.parsed

    def _confluent_writer(self, data: bytes) -> Any:
        schema_id = int.from_bytes(data[1 : confluent.HEADER_SIZE], "big")
        if self.confluent is None:
            raise UnknownSchema(
                f"Confluent wire format (schema id {schema_id}) "
                "but no schema registry is configured"
            )
        return self.confluent.writer(schema_id)

    def _read(self, writer: Any, body: bytes) -> dict[str, Any]:
        stream = io.BytesIO(body)
        try:
            record = schemaless_reader(stream, writer, self.schema.parsed)
        except Exception as exc:  # fastavro raises many (some private) types on bad data
            raise MalformedBody(
                f"{self.schema.name} body cannot be read: {_explained(exc)} ({exc!r})"
            ) from exc
        if stream.tell() != len(body):
            raise MalformedBody(
                f"{self.schema.name} body has {len(body) - stream.tell()} trailing bytes"
            )
        if not isinstance(record, dict):
            raise MalformedBody(f"{self.schema.name} body is not a record")
        return record


def _explained(exc: Exception) -> str:
    """What fastavro's low-level error means for the person reading a dead letter."""
    if isinstance(exc, UnicodeDecodeError):
        return "a string field is not valid UTF-8"
    if isinstance(exc, IndexError):
        return "an enum symbol or union branch index is out of range (an unknown op?)"
    if isinstance(exc, EOFError | StopIteration):
        return "the body ends early (truncated)"
    return "the bytes do not match the writer schema"


@dataclass(frozen=True)
class Codecs:
    """One codec per contract, all in the same wire format."""

    documents: AvroCodec
    chunks: AvroCodec
    embedded: AvroCodec
    dead_letters: AvroCodec

    @classmethod
    def create(cls, schema_registry_url: str = "") -> Codecs:
        registry = ConfluentRegistry.connect(schema_registry_url) if schema_registry_url else None
        return cls(
            documents=AvroCodec("DocumentEvent", confluent_registry=registry),
            chunks=AvroCodec("ChunkEvent", confluent_registry=registry),
            embedded=AvroCodec("EmbeddedChunk", confluent_registry=registry),
            dead_letters=AvroCodec("DeadLetter", confluent_registry=registry),
        )


@cache
def codec_for(name: str) -> AvroCodec:
    """The single-object codec of one contract (readers accept both framings)."""
    return AvroCodec(name)
