"""The schemas docstream knows: the current one per record (`schemas/<Name>.avsc`)
and every released older one (`schemas/history/<Name>.v<N>.avsc`), by fingerprint.

A reader can decode anything any of them wrote, resolved to the current schema."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import to_parsing_canonical_form

from schemas.fingerprint import crc64_avro

SCHEMA_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Schema:
    name: str  # full name, namespace included
    parsed: Any  # fastavro's parsed schema
    fingerprint: int
    text: str  # the schema as JSON, for a schema registry

    @property
    def fingerprint_bytes(self) -> bytes:
        # The single-object encoding stores the fingerprint little-endian.
        return self.fingerprint.to_bytes(8, "little")

    @property
    def fingerprint_hex(self) -> str:
        return self.fingerprint_bytes.hex()


def load_schema(path: Path) -> Schema:
    raw = json.loads(path.read_text(encoding="utf-8"))
    parsed = parse_schema(raw, _write_hint=False)
    canonical = to_parsing_canonical_form(raw)
    full_name = f"{raw['namespace']}.{raw['name']}" if raw.get("namespace") else raw["name"]
    return Schema(
        name=full_name,
        parsed=parsed,
        fingerprint=crc64_avro(canonical.encode()),
        text=json.dumps(raw, separators=(",", ":")),
    )


class SchemaRegistry:
    def __init__(self, directory: Path = SCHEMA_DIR) -> None:
        self._current: dict[str, Schema] = {}
        self._by_fingerprint: dict[int, Schema] = {}
        for path in sorted(directory.glob("*.avsc")):
            schema = load_schema(path)
            self._current[schema.name.rsplit(".", 1)[-1]] = schema
            self._by_fingerprint[schema.fingerprint] = schema
        for path in sorted((directory / "history").glob("*.avsc")):
            older = load_schema(path)
            self._by_fingerprint.setdefault(older.fingerprint, older)

    def current(self, name: str) -> Schema:
        try:
            return self._current[name]
        except KeyError:
            raise KeyError(f"no schema named {name!r} in {sorted(self._current)}") from None

    def by_fingerprint(self, fingerprint: int) -> Schema | None:
        return self._by_fingerprint.get(fingerprint)

    def names(self) -> list[str]:
        return sorted(self._current)


@cache
def default_registry() -> SchemaRegistry:
    return SchemaRegistry()
