"""Typed views of the records on the topics, with the validation Avro cannot express.

`from_record` is the data boundary: a decoded record of the wrong shape (a
missing field, a field of the wrong type) or with content that breaks a rule
raises `InvalidEvent` here, and nowhere else, so a stage can dead-letter bad
data and still let a bug in its own code fail loudly.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast

Op = Literal["UPSERT", "DELETE"]
OPS = ("UPSERT", "DELETE")


class InvalidEvent(ValueError):
    """A record whose shape or content breaks a rule (a missing field, empty doc_id, …)."""


def to_millis(value: datetime | int) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(value)


def now_millis() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


# The instants a reader can turn into a datetime (years 1 to 9999): Avro's long
# holds more, but a `timestamp-millis` beyond these cannot be decoded by any
# reader of ours, so an event carrying one is refused when it is made.
MIN_MILLIS = -62_135_596_800_000  # 0001-01-01T00:00:00Z
MAX_MILLIS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def _check_millis(kind: str, name: str, value: int) -> None:
    if not MIN_MILLIS <= value <= MAX_MILLIS:
        raise InvalidEvent(
            f"{kind}: {name} must be epoch milliseconds from {MIN_MILLIS} to {MAX_MILLIS}"
            f" (years 1 to 9999), got {value}"
        )


_REQUIRED: Any = object()  # a field without a default in its Avro schema


class _Fields:
    """The fields of one decoded record, each checked for presence and type."""

    def __init__(self, kind: str, record: Any) -> None:
        if not isinstance(record, Mapping):
            raise InvalidEvent(f"{kind}: a record must be a mapping, got {type(record).__name__}")
        self.kind = kind
        self.record = record

    def _value(self, name: str, default: Any) -> Any:
        if name in self.record:
            return self.record[name]
        if default is _REQUIRED:
            raise InvalidEvent(f"{self.kind}: field {name!r} is missing")
        return default

    def _wrong(self, name: str, expected: str, value: Any) -> InvalidEvent:
        got = type(value).__name__
        return InvalidEvent(f"{self.kind}: field {name!r} must be {expected}, got {got}")

    def text(self, name: str, default: Any = _REQUIRED) -> str:
        value = self._value(name, default)
        if not isinstance(value, str):
            raise self._wrong(name, "a string", value)
        return value

    def integer(self, name: str) -> int:
        value = self._value(name, _REQUIRED)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(name, "an integer", value)
        return value

    def millis(self, name: str) -> int:
        """A timestamp-millis: decoded as a datetime, written as epoch milliseconds."""
        value = self._value(name, _REQUIRED)
        if isinstance(value, bool) or not isinstance(value, datetime | int):
            raise self._wrong(name, "a datetime or epoch milliseconds", value)
        return to_millis(value)

    def op(self) -> Op:
        value = self._value("op", "UPSERT")
        if value not in OPS:
            raise InvalidEvent(f"{self.kind}: op must be UPSERT or DELETE, got {value!r}")
        return cast(Op, value)

    def strings(self, name: str) -> list[str]:
        value = self._value(name, [])
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise self._wrong(name, "a list of strings", value)
        return list(value)

    def labels(self, name: str) -> dict[str, str]:
        value = self._value(name, {})
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise self._wrong(name, "a map of strings to strings", value)
        return dict(value)

    def floats(self, name: str) -> array[float]:
        value = self._value(name, _REQUIRED)
        if not isinstance(value, list | tuple | array):
            raise self._wrong(name, "a sequence of numbers", value)
        # array() checks every item in C: a per-item check in Python would
        # cost as much as decoding the event. (It takes a bool for 0 or 1.)
        try:
            return array("f", value)  # what Avro's float is: 32 bits, 4 bytes a value
        except TypeError as exc:
            reason = f"{self.kind}: field {name!r} must be a sequence of numbers: {exc}"
            raise InvalidEvent(reason) from exc


def _check_identity(kind: str, doc_id: str, version: int) -> None:
    if not doc_id.strip():
        raise InvalidEvent(f"{kind}: doc_id must not be empty")
    if version < 0:
        raise InvalidEvent(f"{kind}: version must be >= 0, got {version}")


@dataclass(frozen=True)
class DocumentEvent:
    doc_id: str
    version: int
    occurred_at: int  # epoch milliseconds
    op: Op = "UPSERT"
    title: str = ""
    text: str = ""
    source: str = ""
    content_type: str = "text/plain"
    metadata: dict[str, str] = field(default_factory=dict)
    links: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.doc_id or not self.doc_id.strip():
            raise InvalidEvent("doc_id must not be empty")
        if self.version < 0:
            raise InvalidEvent(f"version must be >= 0, got {self.version}")
        if self.op not in OPS:
            raise InvalidEvent(f"op must be UPSERT or DELETE, got {self.op!r}")
        _check_millis("DocumentEvent", "occurred_at", self.occurred_at)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> DocumentEvent:
        f = _Fields("DocumentEvent", record)
        return cls(
            doc_id=f.text("doc_id"),
            version=f.integer("version"),
            occurred_at=f.millis("occurred_at"),
            op=f.op(),
            title=f.text("title", ""),
            text=f.text("text", ""),
            source=f.text("source", ""),
            content_type=f.text("content_type", "text/plain"),
            metadata=f.labels("metadata"),
            links=f.strings("links"),
        )

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ChunkEvent:
    """One chunk of a document version, as the chunker cut it (topic `chunks`).
    A DELETE (index -1, no text) removes every chunk of the document."""

    chunk_id: str
    doc_id: str
    version: int
    index: int
    chunk_count: int
    text: str
    start: int  # character offsets into the document text
    end: int
    occurred_at: int  # epoch milliseconds
    op: Op = "UPSERT"
    title: str = ""
    source: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    links: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check_identity("ChunkEvent", self.doc_id, self.version)
        if self.op not in OPS:
            raise InvalidEvent(f"ChunkEvent: op must be UPSERT or DELETE, got {self.op!r}")
        if self.op == "UPSERT" and not self.chunk_id:
            raise InvalidEvent("ChunkEvent: an UPSERT needs a chunk_id")
        _check_millis("ChunkEvent", "occurred_at", self.occurred_at)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ChunkEvent:
        return cls._read(_Fields("ChunkEvent", record))

    @classmethod
    def _read(cls, f: _Fields) -> ChunkEvent:
        return cls(
            chunk_id=f.text("chunk_id"),
            doc_id=f.text("doc_id"),
            version=f.integer("version"),
            index=f.integer("index"),
            chunk_count=f.integer("chunk_count"),
            text=f.text("text"),
            start=f.integer("start"),
            end=f.integer("end"),
            occurred_at=f.millis("occurred_at"),
            op=f.op(),
            title=f.text("title", ""),
            source=f.text("source", ""),
            metadata=f.labels("metadata"),
            links=f.strings("links"),
        )

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EmbeddedChunk:
    """A ChunkEvent with its embedding (topic `chunks.embedded`): what the sinks
    and rebuilds read. A DELETE has no vector."""

    chunk: ChunkEvent
    model: str
    vector: array[float] = field(default_factory=lambda: array("f"))  # Avro floats: 32 bits

    def __post_init__(self) -> None:
        if self.chunk.op == "UPSERT" and not self.vector:
            raise InvalidEvent(f"EmbeddedChunk: the UPSERT of {self.chunk.chunk_id} has no vector")

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> EmbeddedChunk:
        f = _Fields("EmbeddedChunk", record)
        return cls(ChunkEvent._read(f), model=f.text("model"), vector=f.floats("vector"))

    def to_record(self) -> dict[str, Any]:
        return {**self.chunk.to_record(), "model": self.model, "vector": self.vector.tolist()}
