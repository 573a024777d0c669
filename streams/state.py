"""Per-document state, kept by the chunker in a changelog-backed Faust table
(it survives a worker restart): the latest version seen, its content hash and
chunk count, and where the document stands. The decisions here are pure."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import asdict, dataclass, replace
from enum import Enum
from typing import Any, Protocol, runtime_checkable

from schemas.events import DocumentEvent, now_millis


class Decision(Enum):
    INDEX = "index"  # new content: chunk, embed, write
    DELETE = "delete"  # remove from both stores
    STALE = "stale"  # older than (or as old as) what we have: ignore
    UNCHANGED = "unchanged"  # newer version, same content: nothing to re-embed


@dataclass(frozen=True)
class DocumentState:
    version: int  # the latest version seen
    content_hash: str
    chunk_count: int
    status: str  # chunked | deleted | unchanged | dead_lettered
    correlation_id: str = ""
    reason: str = ""  # why it was dead-lettered
    updated_at: int = 0
    indexed_version: int = -1  # the version whose chunks the stores hold
    profile: str = ""  # the digest of the chunker and model that cut it (ops/jobs/replay.py)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DocumentState:
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# The worker's Faust table (streams/app.py `DocumentStates`), a dict in unit tests.
StateTable = MutableMapping[str, Any]


@runtime_checkable
class PartitionedTable(Protocol):
    """A table whose rows are written with the partition they belong to."""

    def write(self, doc_id: str, value: dict[str, Any], partition: int) -> None: ...


def save(table: StateTable, doc_id: str, state: DocumentState, partition: int) -> None:
    """Write a document's state as a row of `partition`, the partition of the event
    it comes from: the chunker writes a batch's states together, after the batch,
    and each row still lands in its own document's partition of the changelog."""
    if isinstance(table, PartitionedTable):
        table.write(doc_id, state.to_dict(), partition)
    else:
        table[doc_id] = state.to_dict()


def decide(state: DocumentState | None, doc: DocumentEvent, content_hash: str) -> Decision:
    if state is not None and doc.version <= state.version:
        return Decision.STALE
    if doc.op == "DELETE":
        return Decision.DELETE
    if state is not None and state.status != "deleted" and state.content_hash == content_hash:
        return Decision.UNCHANGED
    return Decision.INDEX


def next_state(
    state: DocumentState | None,
    doc: DocumentEvent,
    decision: Decision,
    content_hash: str,
    chunk_count: int,
    correlation_id: str,
    profile: str = "",
) -> DocumentState:
    now = now_millis()
    if decision is Decision.UNCHANGED and state is not None:
        return replace(state, version=doc.version, status="unchanged", updated_at=now)
    if decision is Decision.DELETE:
        return DocumentState(doc.version, "", 0, "deleted", correlation_id, "", now, doc.version)
    return DocumentState(
        doc.version,
        content_hash,
        chunk_count,
        "chunked",
        correlation_id,
        "",
        now,
        doc.version,
        profile,
    )


def load(table: StateTable, doc_id: str) -> DocumentState | None:
    raw = table.get(doc_id)
    return DocumentState.from_dict(raw) if raw else None


def dead_lettered(state: DocumentState | None, reason: str, correlation_id: str) -> DocumentState:
    """A poison event leaves the indexed version alone and records why it failed."""
    base = state or DocumentState(version=-1, content_hash="", chunk_count=0, status="")
    return replace(
        base,
        status="dead_lettered",
        reason=reason,
        correlation_id=correlation_id,
        updated_at=now_millis(),
    )
