"""Fault injection at the vector-store interface, for the fault suite
(`tests/faults`): an embedded Qdrant lives inside the worker process, so it
cannot be stopped from outside the way a Neo4j server can.

Off unless DOCSTREAM_FAULT_QDRANT_WRITES names a flag file. Then the live
Qdrant sink's writes raise `InjectedStoreUnavailable` (a `StoreUnavailable`,
what the adapter raises for a real outage: the retry and breaker path wait it
out and hold the stream, losing nothing) for as long as that file exists;
reads and everything else pass through.
Creating and deleting the file starts and ends the outage without a restart."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from core.logs import get_logger
from core.types import Hit, SearchFilter, StoreUnavailable, VectorStore, WritePlan

log = get_logger(__name__)
FAULT_QDRANT_WRITES = "DOCSTREAM_FAULT_QDRANT_WRITES"


class InjectedStoreUnavailable(StoreUnavailable):
    """An outage injected on purpose: waited out by `sinks.retry.until_written`."""


class FaultyVectorStore:
    """A VectorStore whose writes fail while `flag` exists."""

    def __init__(self, store: VectorStore, flag: Path) -> None:
        self.store = store
        self.flag = flag
        self._failing = False

    def _check(self) -> None:
        failing = self.flag.exists()
        if failing != self._failing:
            self._failing = failing
            log.warning(
                "injected Qdrant write fault " + ("started" if failing else "ended"),
                extra={"flag": str(self.flag)},
            )
        if failing:
            raise InjectedStoreUnavailable("qdrant", f"injected fault: {self.flag} exists")

    async def write(self, plan: WritePlan) -> None:
        self._check()
        await self.store.write(plan)

    async def ensure_schema(self) -> None:
        await self.store.ensure_schema()

    async def search(
        self, vector: Sequence[float], limit: int, where: SearchFilter | None = None
    ) -> list[Hit]:
        return await self.store.search(vector, limit, where)

    async def search_lexical(
        self, text: str, limit: int, where: SearchFilter | None = None
    ) -> list[Hit]:
        return await self.store.search_lexical(text, limit, where)

    async def count(self, doc_id: str, version: int | None = None) -> int:
        return await self.store.count(doc_id, version)

    async def ping(self) -> None:
        await self.store.ping()

    async def close(self) -> None:
        await self.store.close()


def with_injected_faults(store: VectorStore, env: Mapping[str, str] | None = None) -> VectorStore:
    """`store` itself, or, when DOCSTREAM_FAULT_QDRANT_WRITES is set, `store`
    behind a FaultyVectorStore (announced loudly: never meant for production)."""
    flag = (os.environ if env is None else env).get(FAULT_QDRANT_WRITES, "").strip()
    if not flag:
        return store
    log.warning(
        "FAULT INJECTION ENABLED: Qdrant sink writes fail while the flag file exists",
        extra={"env": FAULT_QDRANT_WRITES, "flag": flag},
    )
    return FaultyVectorStore(store, Path(flag))
