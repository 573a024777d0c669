"""Typed views of the records on the topics, with the validation Avro cannot express."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Op = Literal["UPSERT", "DELETE"]


class InvalidEvent(ValueError):
    """A well-formed record whose content breaks a rule (empty doc_id, negative version)."""


def to_millis(value: datetime | int) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(value)


def now_millis() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


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
        if self.op not in ("UPSERT", "DELETE"):
            raise InvalidEvent(f"op must be UPSERT or DELETE, got {self.op!r}")

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> DocumentEvent:
        values = dict(record)
        values["occurred_at"] = to_millis(values["occurred_at"])
        return cls(**values)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)
