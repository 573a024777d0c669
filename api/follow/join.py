"""The sinks' notices joined per document version: a version is ready once
every sink reported all its chunks written (or its deletion). Bounded: at most
`max_pending` versions wait, each at most `expire_s` (a sink that never
reports, say one that is paused, must not grow the table without end)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from core.notices import IndexedNotice


@dataclass(frozen=True)
class ReadyDoc:
    """A document version every sink has written: what followers hear of."""

    doc_id: str
    version: int
    deleted: bool
    written_at: float  # the last sink's write
    correlation_id: str = ""


@dataclass
class _Pending:
    first_seen: float
    chunk_count: int = 0
    deleted: bool = False
    written_at: float = 0.0
    correlation_id: str = ""
    chunks: dict[str, set[str]] = field(default_factory=dict)  # sink → chunk ids
    deleted_by: set[str] = field(default_factory=set)


class NoticeJoin:
    def __init__(
        self, sinks: frozenset[str], max_pending: int = 10_000, expire_s: float = 300.0
    ) -> None:
        self.sinks = sinks
        self.max_pending = max_pending
        self.expire_s = expire_s
        self.expired = 0
        self._pending: OrderedDict[tuple[str, int], _Pending] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, notice: IndexedNotice, now: float) -> list[ReadyDoc]:
        ready: list[ReadyDoc] = []
        if notice.sink not in self.sinks:
            return ready
        for doc in notice.docs:
            key = (doc.doc_id, doc.version)
            entry = self._pending.get(key)
            if entry is None:
                entry = self._pending[key] = _Pending(first_seen=now)
            entry.written_at = max(entry.written_at, notice.written_at)
            entry.correlation_id = doc.correlation_id or entry.correlation_id
            if doc.deleted:
                entry.deleted = True
                entry.deleted_by.add(notice.sink)
            else:
                entry.chunk_count = max(entry.chunk_count, doc.chunk_count)
                entry.chunks.setdefault(notice.sink, set()).update(doc.chunks)
            if self._complete(entry):
                del self._pending[key]
                ready.append(
                    ReadyDoc(
                        doc.doc_id,
                        doc.version,
                        entry.deleted,
                        entry.written_at,
                        entry.correlation_id,
                    )
                )
        self._expire(now)
        return ready

    def _complete(self, entry: _Pending) -> bool:
        if entry.deleted:
            return entry.deleted_by >= self.sinks
        return all(len(entry.chunks.get(sink, ())) >= entry.chunk_count for sink in self.sinks)

    def _expire(self, now: float) -> None:
        while self._pending:
            key, entry = next(iter(self._pending.items()))
            if len(self._pending) <= self.max_pending and now - entry.first_seen < self.expire_s:
                return
            del self._pending[key]
            self.expired += 1
