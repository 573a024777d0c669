"""The Confluent wire format: magic byte 0, a 4-byte big-endian schema id, then
the Avro body; the id is resolved by a Confluent-compatible schema registry.

Subjects follow the record-name strategy (`io.docstream.DocumentEvent`), so one
subject per contract whatever topic prefix a deployment uses."""

from __future__ import annotations

import json
from typing import Any

from fastavro import parse_schema

from schemas.errors import UnknownSchema
from schemas.registry import Schema

MAGIC = b"\x00"
HEADER_SIZE = 5


class RegistryUnavailable(ConnectionError):
    """The schema registry did not answer: transient, never a dead letter."""


class ConfluentRegistry:
    def __init__(self, client: Any) -> None:
        self.client = client
        self._ids: dict[int, int] = {}  # our fingerprint → registry id
        self._writers: dict[int, Any] = {}  # registry id → parsed schema

    @classmethod
    def connect(cls, url: str) -> ConfluentRegistry:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        return cls(SchemaRegistryClient.new_client({"url": url}))

    def id_of(self, schema: Schema) -> int:
        if schema.fingerprint not in self._ids:
            from confluent_kafka.schema_registry import Schema as RegistrySchema

            try:
                self._ids[schema.fingerprint] = self.client.register_schema(
                    schema.name, RegistrySchema(schema.text, "AVRO")
                )
            except Exception as exc:
                raise RegistryUnavailable(f"registering {schema.name}: {exc}") from exc
        return self._ids[schema.fingerprint]

    def writer(self, schema_id: int) -> Any:
        if schema_id not in self._writers:
            from confluent_kafka.schema_registry.error import SchemaRegistryError

            try:
                found = self.client.get_schema(schema_id)
            except SchemaRegistryError as exc:
                if exc.http_status_code == 404:
                    raise UnknownSchema(f"schema id {schema_id} is not in the registry") from exc
                raise RegistryUnavailable(f"looking up schema id {schema_id}: {exc}") from exc
            except Exception as exc:
                raise RegistryUnavailable(f"looking up schema id {schema_id}: {exc}") from exc
            self._writers[schema_id] = parse_schema(json.loads(found.schema_str))
        return self._writers[schema_id]
