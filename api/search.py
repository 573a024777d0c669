"""The query path: embed the question, nearest chunks from Qdrant, then one graph
step in Neo4j (the chunks next to the best hits), each stage under its own
timeout. A store that fails or is slow is reported as `degraded`; the others
still answer. Results come out as a stream of events as soon as each stage has
them, so the SSE edge can send dense hits before the graph step finishes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeVar

from core.logs import get_logger
from core.metrics import QUERY_DEGRADED, QUERY_SECONDS
from core.types import Embedder, GraphStore, Hit, VectorStore

log = get_logger(__name__)
T = TypeVar("T")

# A graph neighbour ranks below the hit it was reached from.
GRAPH_DECAY = 0.5


@dataclass(frozen=True)
class QueryLimits:
    max_k: int = 100
    max_expand: int = 20
    embed_timeout_s: float = 5.0
    store_timeout_s: float = 2.0


@dataclass(frozen=True)
class Query:
    text: str
    k: int = 10
    expand: int = 3  # how many of the best hits get their neighbours added


@dataclass
class SearchEvent:
    kind: str  # "hit" | "degraded" | "done"
    data: dict[str, Any] = field(default_factory=dict)


def hit_payload(rank: int, hit: Hit, via: str | None = None) -> dict[str, Any]:
    payload = {"rank": rank, **asdict(hit)}
    payload["chunk_index"] = payload.pop("index")
    if via:
        payload["via"] = via
    return payload


class StoreTimeout(Exception):
    pass


class SearchService:
    def __init__(
        self, embedder: Embedder, vectors: VectorStore, graph: GraphStore, limits: QueryLimits
    ) -> None:
        self.embedder = embedder
        self.vectors = vectors
        self.graph = graph
        self.limits = limits

    async def run(self, query: Query) -> AsyncIterator[SearchEvent]:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        vector = await self._timed(
            "embed",
            timings,
            asyncio.to_thread(self.embedder.embed, [query.text]),
            self.limits.embed_timeout_s,
        )
        dense: list[Hit] = []
        try:
            dense = await self._timed(
                "dense",
                timings,
                self.vectors.search(vector[0], query.k),
                self.limits.store_timeout_s,
            )
        except Exception as exc:
            yield self._degraded("qdrant", exc)
        for rank, hit in enumerate(dense, start=1):
            yield SearchEvent("hit", hit_payload(rank, hit))
        hits = len(dense)
        async for event in self._expand(query, dense, timings):
            hits += event.kind == "hit"
            yield event
        timings["total_ms"] = _ms(started)
        QUERY_SECONDS.labels("total").observe(timings["total_ms"] / 1000)
        yield SearchEvent("done", {"hits": hits, "timings": timings})

    async def _expand(
        self, query: Query, dense: list[Hit], timings: dict[str, float]
    ) -> AsyncIterator[SearchEvent]:
        seeds = {h.chunk_id: h for h in dense[: query.expand]}
        if not seeds:
            return
        try:
            found = await self._timed(
                "graph",
                timings,
                self.graph.neighbours(list(seeds), per_chunk=2),
                self.limits.store_timeout_s,
            )
        except Exception as exc:
            yield self._degraded("neo4j", exc)
            return
        seen = {h.chunk_id for h in dense}
        rank = len(dense)
        for hit in found:
            if hit.chunk_id in seen:
                continue
            seen.add(hit.chunk_id)
            rank += 1
            seed = _seed_of(hit, seeds)
            score = seeds[seed].score * GRAPH_DECAY if seed else 0.0
            yield SearchEvent("hit", hit_payload(rank, replace(hit, score=score), via=seed))

    async def _timed(
        self, stage: str, timings: dict[str, float], work: Awaitable[T], timeout: float
    ) -> T:
        started = time.perf_counter()
        try:
            return await asyncio.wait_for(work, timeout)
        except TimeoutError as exc:
            raise StoreTimeout(f"{stage} took longer than {timeout}s") from exc
        finally:
            timings[f"{stage}_ms"] = _ms(started)
            QUERY_SECONDS.labels(stage).observe(timings[f"{stage}_ms"] / 1000)

    @staticmethod
    def _degraded(store: str, exc: Exception) -> SearchEvent:
        QUERY_DEGRADED.labels(store).inc()
        log.warning("query degraded", extra={"store": store, "error": repr(exc)})
        reason = "timeout" if isinstance(exc, StoreTimeout) else "unavailable"
        return SearchEvent("degraded", {"store": store, "reason": reason})


def _seed_of(hit: Hit, seeds: dict[str, Hit]) -> str | None:
    # Neighbours are in the same document at index ± 1 of a seed.
    for seed in seeds.values():
        if seed.doc_id == hit.doc_id and abs(seed.index - hit.index) == 1:
            return seed.chunk_id
    return None


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
