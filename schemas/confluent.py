"""The Confluent wire format: magic byte 0, a 4-byte big-endian schema id, then
the Avro body; the id is resolved by a Confluent-compatible schema registry
(`core/kafka/registry.py`).

Subjects follow the record-name strategy (`io.docstream.DocumentEvent`), so one
subject per contract whatever topic prefix a deployment uses."""

from __future__ import annotations

import json
from typing import Any, Protocol

from fastavro import parse_schema

from core.kafka.registry import SchemaIdUnknown, SchemaRegistry
from schemas.errors import UnknownSchema
from schemas.registry import Schema

MAGIC = b"\x00"
HEADER_SIZE = 5


class RegistryUnavailable(ConnectionError):
    """The schema registry did not answer: transient, never a dead letter."""


class RegistryClient(Protocol):
    """What the codecs ask of a registry (`core.kafka.registry.SchemaRegistry`)."""

    def register(self, subject: str, avro_text: str) -> int: ...

    def schema_text(self, schema_id: int) -> str: ...


class ConfluentRegistry:
    def __init__(self, client: RegistryClient) -> None:
        self.client = client
        self._ids: dict[int, int] = {}  # our fingerprint → registry id
        self._writers: dict[int, Any] = {}  # registry id → parsed schema

    @classmethod
    def connect(cls, url: str) -> ConfluentRegistry:
        return cls(SchemaRegistry(url))

    def id_of(self, schema: Schema) -> int:
        if schema.fingerprint not in self._ids:
            try:
                self._ids[schema.fingerprint] = self.client.register(schema.name, schema.text)
            except Exception as exc:
                raise RegistryUnavailable(f"registering {schema.name}: {exc}") from exc
        return self._ids[schema.fingerprint]

    def writer(self, schema_id: int) -> Any:
        if schema_id not in self._writers:
            try:
                text = self.client.schema_text(schema_id)
            except SchemaIdUnknown as exc:
                raise UnknownSchema(str(exc)) from exc
            except Exception as exc:
                raise RegistryUnavailable(f"looking up schema id {schema_id}: {exc}") from exc
            self._writers[schema_id] = parse_schema(json.loads(text))
        return self._writers[schema_id]
