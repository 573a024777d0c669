"""Fakes for unit tests of logic. Integration tests never use these."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from core.types import Hit, IndexedChunk, Neighbour, StoreRejected, StoreUnavailable, WritePlan


@dataclass
class FakeMessage:
    value: bytes | None
    key: bytes | None = b"doc"
    topic: str = "documents"
    partition: int = 0
    offset: int = 0
    headers: Any = field(default_factory=list)


@dataclass
class FakeProducer:
    sent: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]] = field(
        default_factory=list
    )

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        self.sent.append((topic, key, value, headers))

    async def send_many(
        self, topic: str, messages: Sequence[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]
    ) -> None:
        for key, value, headers in messages:
            await self.send(topic, key, value, headers)

    async def send_soon(
        self, topic: str, messages: Sequence[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]
    ) -> Awaitable[None]:
        """Sent at once; the acknowledgement is already there."""
        await self.send_many(topic, messages)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def on(self, topic: str) -> list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]]:
        return [m for m in self.sent if m[0] == topic]


class FakeEmbedder:
    model_name = "fake"
    dimension = 3

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return [[float(len(t)), 1.0, 0.0] for t in texts]


@dataclass
class FakeStore:
    """Refuses chunks whose text contains `poison` (`StoreRejected`); while
    `down_for` counts down, writes raise `StoreUnavailable`."""

    written: list[IndexedChunk] = field(default_factory=list)
    plans: list[WritePlan] = field(default_factory=list)
    down_for: int = 0
    hits: list[Hit] = field(default_factory=list)
    lexical_hits: list[Hit] = field(default_factory=list)
    fail: BaseException | None = None
    filters: list[Any] = field(default_factory=list)

    async def write(self, plan: WritePlan) -> None:
        if self.down_for > 0:
            self.down_for -= 1
            raise StoreUnavailable("fake", "store down")
        if any("poison" in c.text for c in plan.upserts):
            raise StoreRejected("fake", "refused: poison")
        self.plans.append(plan)
        self.written.extend(plan.upserts)

    async def search(self, vector: Sequence[float], limit: int, where: Any = None) -> list[Hit]:
        if self.fail:
            raise self.fail
        self.filters.append(where)
        return self.hits[:limit]

    async def search_lexical(self, text: str, limit: int, where: Any = None) -> list[Hit]:
        if self.fail:
            raise self.fail
        self.filters.append(where)
        return self.lexical_hits[:limit]

    async def count(self, doc_id: str, version: int | None = None) -> int:
        return sum(1 for c in self.written if c.doc_id == doc_id and version in (None, c.version))

    async def neighbours(
        self, chunk_ids: Sequence[str], per_edge: int, edges: Sequence[str] = ("next",)
    ) -> list[Neighbour]:
        """Each of `hits` is reached over NEXT from the seed in its document."""
        if self.fail:
            raise self.fail
        self.filters.append(tuple(edges))
        seeds = list(chunk_ids)
        return [Neighbour(h, seeds[0] if seeds else "", "next") for h in self.hits]

    async def ensure_schema(self) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


def misread(hits: list[Hit]) -> list[Hit]:
    """A bug of ours in reading a store's reply: each hit read as the dict a
    library returns raises TypeError ('Hit' object is not subscriptable)."""
    return [replace(h, chunk_id=h["id"]) for h in hits]  # type: ignore[index]


@dataclass
class MisreadStore(FakeStore):
    """A store that answers, read by code of ours with a bug: while `broken`,
    every reply (dense, lexical, neighbours) raises TypeError as it is read."""

    broken: bool = True

    def _read(self, hits: list[Hit]) -> list[Hit]:
        return misread(hits) if self.broken else hits

    async def search(self, vector: Sequence[float], limit: int, where: Any = None) -> list[Hit]:
        return self._read(await super().search(vector, limit, where))

    async def search_lexical(self, text: str, limit: int, where: Any = None) -> list[Hit]:
        return self._read(await super().search_lexical(text, limit, where))

    async def neighbours(
        self, chunk_ids: Sequence[str], per_edge: int, edges: Sequence[str] = ("next",)
    ) -> list[Neighbour]:
        found = await super().neighbours(chunk_ids, per_edge, edges)
        self._read([n.hit for n in found])
        return found


def hit(
    chunk_id: str, doc_id: str = "d", index: int = 0, score: float = 0.9, retriever: str = "dense"
) -> Hit:
    return Hit(chunk_id, doc_id, index, f"text of {chunk_id}", score, "corr-1", retriever, "Title")
