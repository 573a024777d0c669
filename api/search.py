"""The query path. Plan: embed the question (cached), then dense (Qdrant
vectors) and lexical (Qdrant BM25 sparse vectors) retrieval side by side, fuse
them (RRF or weighted), stream the fused hits, then one graph step in Neo4j
(the `NEXT` neighbours of the best hits). Every store call runs under its own
timeout; a store that fails (an error of the store contract, `core/types.py`)
or is slow is reported as `degraded` and the rest still answers. Any other
exception is a bug of ours, not an outage: it ends the query as `QueryFailed`,
and the edge answers it with an `error` event or a 500 (`report_failure`). Filters
apply to every retriever."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from api.fusion import FusedHit, fuse
from core.logs import get_logger
from core.metrics import QUERY_DEGRADED, QUERY_ERRORS, QUERY_SECONDS
from core.types import CurrentProfile, GraphStore, Hit, SearchFilter, StoreError, VectorStore

log = get_logger(__name__)
T = TypeVar("T")

# A graph neighbour ranks below the hit it was reached from.
GRAPH_DECAY = 0.5
GRAPH_EDGES = ("next", "links_to", "mentions")
MODES = ("hybrid", "dense", "lexical")
# What a client is told of a bug that ended its query: no internals, only
# where to look (the correlation id names the logged traceback).
FAILED_MESSAGE = "the query failed on the server; the correlation id names it in the logs"


@dataclass(frozen=True)
class QueryLimits:
    max_k: int = 100
    max_expand: int = 20
    embed_timeout_s: float = 5.0
    store_timeout_s: float = 2.0
    candidates_per_k: int = 3  # each retriever fetches k times this before fusion
    max_candidates: int = 200


@dataclass(frozen=True)
class Query:
    text: str
    k: int = 10
    expand: int = 3  # how many of the best hits get their neighbours added
    mode: str = "hybrid"
    fusion: str = "rrf"
    weights: dict[str, float] = field(default_factory=dict)
    where: SearchFilter = field(default_factory=SearchFilter)
    follow: bool = False  # keep the stream open for new matches (api/follow/)
    min_score: float | None = None  # follow mode: new chunks must score this much


@dataclass
class SearchEvent:
    kind: str  # "hit" | "degraded" | "done"; the edge adds "error" (`report_failure`)
    data: dict[str, Any] = field(default_factory=dict)


def hit_payload(rank: int, hit: Hit, ranks: dict[str, int]) -> dict[str, Any]:
    # Field by field, not dataclasses.asdict: asdict deep-copies, and it was 5%
    # of the API's CPU per query under load.
    return {
        "rank": rank,
        "chunk_id": hit.chunk_id,
        "doc_id": hit.doc_id,
        "chunk_index": hit.index,
        "text": hit.text,
        "score": hit.score,
        "correlation_id": hit.correlation_id,
        "retriever": hit.retriever,
        "title": hit.title,
        "retrievers": ranks,
    }


class StoreTimeout(Exception):
    pass


class QueryFailed(Exception):
    """A bug of ours (neither the store contract nor a timeout) ended a query
    at `stage`; the bug itself is its `__cause__`."""

    def __init__(self, stage: str) -> None:
        super().__init__(f"the query's {stage} stage failed")
        self.stage = stage


def is_bug(exc: BaseException) -> bool:
    """Neither the store contract, nor a timeout, nor a bug already named, nor
    a cancellation: a bug of ours, which ends the query."""
    return isinstance(exc, Exception) and not isinstance(
        exc, StoreError | StoreTimeout | QueryFailed
    )


def store_failure(exc: BaseException, stage: str) -> StoreError | StoreTimeout:
    """`exc` when a store failed or was slow (it degrades the answer); a bug is
    raised as `QueryFailed` of `stage`, anything else as it is."""
    if is_bug(exc):
        raise QueryFailed(stage) from exc
    if isinstance(exc, StoreError | StoreTimeout):
        return exc
    raise exc  # already named, or a cancellation


class named_bugs:
    """Within it, a bug of ours leaves as `QueryFailed(stage)` (`is_bug`); the
    store contract and timeouts leave as they are, for the caller to degrade
    the answer. The stage is named where it is known, as the stores' adapters
    map their library's errors (`sinks/errors.py`, `mapped_by`)."""

    def __init__(self, stage: str) -> None:
        self.stage = stage

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        if exc is not None and is_bug(exc):
            raise QueryFailed(self.stage) from exc


def report_failure(
    exc: BaseException, correlation_id: str, stage: str = "answer"
) -> dict[str, str]:
    """Report a bug that ended a query or a follower, once: its traceback logged
    with the request's correlation id, and counted by the stage that raised it
    (`stage` when it is no `QueryFailed`). Returns the data of the `error` event
    (or of the 500): a short message and the correlation id, nothing more."""
    stage = exc.stage if isinstance(exc, QueryFailed) else stage
    QUERY_ERRORS.labels(stage).inc()
    log.error(
        "query failed: a bug, not a store outage",
        exc_info=exc,
        extra={"stage": stage, "correlation_id": correlation_id},
    )
    return {"message": FAILED_MESSAGE, "correlation_id": correlation_id}


class QueryEmbeddings:
    """An LRU of query vectors, embedded with the profile's current model. A
    text's vector depends only on the model, so entries are keyed by model and
    text: after a replay switched models, none of the old model's is served
    (and they are dropped, to leave the room to the new model's)."""

    def __init__(self, profile: CurrentProfile, size: int = 2048) -> None:
        self.profile = profile
        self.size = size
        self._model = profile.embedder.model_name
        self._cache: OrderedDict[tuple[str, str], list[float]] = OrderedDict()

    def cached(self, text: str) -> list[float] | None:
        model = self.profile.embedder.model_name
        if model != self._model:
            self._cache.clear()
            self._model = model
        vector = self._cache.get((model, text))
        if vector is not None:
            self._cache.move_to_end((model, text))
        return vector

    async def vector(self, text: str) -> list[float]:
        if (vector := self.cached(text)) is not None:
            return vector
        embedder = self.profile.embedder  # the key names the model that made the vector
        [vector] = await asyncio.to_thread(embedder.embed, [text])
        self._cache[(embedder.model_name, text)] = vector
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return vector


class SearchService:
    def __init__(
        self,
        profile: CurrentProfile,
        vectors: VectorStore,
        graph: GraphStore,
        limits: QueryLimits,
    ) -> None:
        self.embeddings = QueryEmbeddings(profile)
        self.vectors = vectors
        self.graph = graph
        self.limits = limits

    async def run(self, query: Query) -> AsyncIterator[SearchEvent]:
        async for burst in self.bursts(query):
            for event in burst:
                yield event

    async def bursts(
        self, query: Query, ranked_out: dict[str, list[Hit]] | None = None
    ) -> AsyncIterator[list[SearchEvent]]:
        """The query's events in the groups they become known in, so a stream
        can send each group at once: the fused hits (after any `degraded`),
        then the graph's hits, with `done` at the end of the last group.
        `ranked_out` receives each retriever's hits before fusion (follow
        mode takes its score thresholds from them)."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        degraded: dict[str, str] = {}  # store → reason, for this query only
        ranked = await self._retrieve(query, timings, degraded)
        if ranked_out is not None:
            ranked_out.update(ranked)
        burst = [
            SearchEvent("degraded", {"store": store, "reason": reason})
            for store, reason in sorted(degraded.items())
        ]
        fusion_started = time.perf_counter()
        fused = fuse(ranked, query.fusion, query.weights)[: query.k]
        timings["fusion_ms"] = _ms(fusion_started)
        for rank, item in enumerate(fused, start=1):
            hit = replace(item.hit, score=round(item.score, 6))
            burst.append(SearchEvent("hit", hit_payload(rank, hit, item.ranks)))
        hits = len(fused)
        if query.expand and fused:
            yield burst  # the fused hits go out before the graph is asked
            burst = [event async for event in self._expand(query, fused, timings, degraded)]
            hits += sum(event.kind == "hit" for event in burst)
        timings["total_ms"] = _ms(started)
        QUERY_SECONDS.labels("total").observe(timings["total_ms"] / 1000)
        yield [*burst, SearchEvent("done", {"hits": hits, "mode": query.mode, "timings": timings})]

    async def retrieve(self, query: Query, depth: int) -> tuple[dict[str, list[Hit]], list[str]]:
        """Each retriever's hits with their own scores, no fusion or graph
        (follow mode's matching), and the stores that failed."""
        degraded: dict[str, str] = {}
        ranked = await self._retrieve(query, {}, degraded, depth)
        return ranked, sorted(degraded)

    async def _retrieve(
        self,
        query: Query,
        timings: dict[str, float],
        degraded: dict[str, str],
        depth: int | None = None,
    ) -> dict[str, list[Hit]]:
        if depth is None:
            depth = min(query.k * self.limits.candidates_per_k, self.limits.max_candidates)
        jobs: dict[str, Awaitable[list[Hit]]] = {}
        if query.mode in ("hybrid", "dense"):
            jobs["dense"] = self._dense(query, depth, timings)
        if query.mode in ("hybrid", "lexical"):
            jobs["lexical"] = self._timed(
                "lexical", timings, self.vectors.search_lexical(query.text, depth, query.where)
            )
        results = await asyncio.gather(*jobs.values(), return_exceptions=True)
        ranked: dict[str, list[Hit]] = {}
        failed: list[StoreError | StoreTimeout] = []
        for name, result in zip(jobs, results, strict=True):
            if isinstance(result, BaseException):
                failed.append(store_failure(result, name))  # a bug raises here
            else:
                ranked[name] = result
        # Only once no bug ended the query: a query that fails is not degraded.
        for exc in failed:
            self._degrade("qdrant", exc, degraded)
        return ranked

    async def _dense(self, query: Query, depth: int, timings: dict[str, float]) -> list[Hit]:
        vector = self.embeddings.cached(query.text)
        if vector is None:
            vector = await self._timed(
                "embed", timings, self.embeddings.vector(query.text), self.limits.embed_timeout_s
            )
        else:
            timings["embed_ms"] = 0.0  # cached: no wait on the loop for it
            QUERY_SECONDS.labels("embed").observe(0.0)
        return await self._timed("dense", timings, self.vectors.search(vector, depth, query.where))

    async def _expand(
        self,
        query: Query,
        fused: list[FusedHit],
        timings: dict[str, float],
        degraded: dict[str, str],
    ) -> AsyncIterator[SearchEvent]:
        seeds = {f.hit.chunk_id: f for f in fused[: query.expand]}
        if not seeds:
            return
        # A filtered query stays inside the seeds' documents, which passed the filter.
        edges = ("next",) if query.where else GRAPH_EDGES
        try:
            found = await self._timed(
                "graph", timings, self.graph.neighbours(list(seeds), per_edge=2, edges=edges)
            )
        except (StoreError, StoreTimeout) as exc:  # anything else is a bug: QueryFailed
            self._degrade("neo4j", exc, degraded)
            yield SearchEvent("degraded", {"store": "neo4j", "reason": degraded["neo4j"]})
            return
        seen = {f.hit.chunk_id for f in fused}
        rank = len(fused)
        for neighbour in found:
            if neighbour.hit.chunk_id in seen:
                continue
            seen.add(neighbour.hit.chunk_id)
            rank += 1
            score = round(seeds[neighbour.seed].score * GRAPH_DECAY, 6)
            payload = hit_payload(rank, replace(neighbour.hit, score=score), {"graph": 1})
            yield SearchEvent("hit", {**payload, "via": neighbour.seed, "edge": neighbour.edge})

    async def _timed(
        self,
        stage: str,
        timings: dict[str, float],
        work: Awaitable[T],
        timeout: float | None = None,
    ) -> T:
        timeout = self.limits.store_timeout_s if timeout is None else timeout
        started = time.perf_counter()
        try:
            with named_bugs(stage):
                try:
                    # asyncio.timeout, not wait_for: no extra task (and loop turn) per stage.
                    async with asyncio.timeout(timeout):
                        return await work
                except TimeoutError as exc:
                    raise StoreTimeout(f"{stage} took longer than {timeout}s") from exc
        finally:
            timings[f"{stage}_ms"] = _ms(started)
            QUERY_SECONDS.labels(stage).observe(timings[f"{stage}_ms"] / 1000)

    @staticmethod
    def _degrade(store: str, exc: StoreError | StoreTimeout, degraded: dict[str, str]) -> None:
        if store in degraded:
            return
        degraded[store] = "timeout" if isinstance(exc, StoreTimeout) else "unavailable"
        QUERY_DEGRADED.labels(store).inc()
        log.warning("query degraded", extra={"store": store, "error": repr(exc)})


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
