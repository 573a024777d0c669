"""Avro single-object encoding: `C3 01` + 8-byte CRC-64-AVRO fingerprint (little
endian) + the Avro binary body. Every message says which schema wrote it, and the
reader resolves that writer schema against its own (Avro schema resolution)."""

from __future__ import annotations

import io
from functools import cache
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from schemas.errors import BadMarker, EncodeError, MalformedBody, UnknownSchema
from schemas.registry import Schema, SchemaRegistry, default_registry

MARKER = b"\xc3\x01"
HEADER_SIZE = len(MARKER) + 8


class AvroCodec:
    def __init__(self, name: str, registry: SchemaRegistry | None = None) -> None:
        self.registry = registry or default_registry()
        self.schema: Schema = self.registry.current(name)

    @property
    def fingerprint_hex(self) -> str:
        return self.schema.fingerprint_hex

    def encode(self, record: dict[str, Any]) -> bytes:
        buffer = io.BytesIO()
        buffer.write(MARKER)
        buffer.write(self.schema.fingerprint_bytes)
        try:
            schemaless_writer(buffer, self.schema.parsed, record, strict_allow_default=True)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise EncodeError(f"{self.schema.name}: {exc}") from exc
        return buffer.getvalue()

    def decode(self, data: bytes | None) -> dict[str, Any]:
        if not data or len(data) < HEADER_SIZE or not data.startswith(MARKER):
            raise BadMarker(
                f"not Avro single-object encoding ({len(data or b'')} bytes, "
                f"starts {bytes(data or b'')[:2].hex() or 'empty'}, expected c301)"
            )
        fingerprint = int.from_bytes(data[2:HEADER_SIZE], "little")
        writer = self.registry.by_fingerprint(fingerprint)
        if writer is None:
            raise UnknownSchema(f"unknown schema fingerprint {data[2:HEADER_SIZE].hex()}")
        body = io.BytesIO(data[HEADER_SIZE:])
        try:
            record = schemaless_reader(body, writer.parsed, self.schema.parsed)
        except (EOFError, StopIteration, ValueError, UnicodeDecodeError, IndexError) as exc:
            raise MalformedBody(f"{writer.name} body cannot be read: {exc!r}") from exc
        except Exception as exc:  # fastavro raises a few private error types on bad data
            raise MalformedBody(f"{writer.name} body cannot be read: {exc!r}") from exc
        if body.tell() != len(data) - HEADER_SIZE:
            raise MalformedBody(
                f"{writer.name} body has {len(data) - HEADER_SIZE - body.tell()} trailing bytes"
            )
        if not isinstance(record, dict):
            raise MalformedBody(f"{writer.name} body is not a record")
        return record


@cache
def codec_for(name: str) -> AvroCodec:
    return AvroCodec(name)
