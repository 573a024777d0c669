"""A Confluent-compatible schema registry, through confluent-kafka's client:
register a schema under a subject, fetch a schema's text by its id. The
codecs' side of the Confluent wire format is `schemas/confluent.py`.

Its failures leave as two exceptions of the project's: `SchemaIdUnknown` (the
registry answered 404: no schema has that id) and `RegistryUnreachable`
(anything else: no answer, a server error), so a caller can tell data that is
wrong from a registry that is down."""

from __future__ import annotations

from typing import Any


class SchemaIdUnknown(LookupError):
    """The registry has no schema with this id."""


class RegistryUnreachable(ConnectionError):
    """The registry did not answer, or answered with an error of its own."""


class SchemaRegistry:
    def __init__(self, url: str) -> None:
        # Imported here: the registry client takes about a second to import,
        # and only a deployment with a registry needs it.
        from confluent_kafka.schema_registry import SchemaRegistryClient

        self._client: Any = SchemaRegistryClient.new_client({"url": url})

    def register(self, subject: str, avro_text: str) -> int:
        """The id of an Avro schema under `subject`, registered if new."""
        from confluent_kafka.schema_registry import Schema

        try:
            return int(self._client.register_schema(subject, Schema(avro_text, "AVRO")))
        except Exception as exc:
            raise RegistryUnreachable(str(exc)) from exc

    def schema_text(self, schema_id: int) -> str:
        """The text of the schema with id `schema_id`."""
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            found = self._client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise SchemaIdUnknown(f"schema id {schema_id} is not in the registry") from exc
            raise RegistryUnreachable(str(exc)) from exc
        except Exception as exc:
            raise RegistryUnreachable(str(exc)) from exc
        return str(found.schema_str)
