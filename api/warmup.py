"""Warming the query path before the edge reports ready.

The first query after a start used to pay for every cold path at once: the
model's first forward pass, the stores' first dense and sparse searches, and
above all Neo4j planning and compiling the neighbours query (1,080 ms of a
1,109 ms first answer, measured with `make run`). `Warmup` runs each of them
once with a probe no user would send, then one whole query through the search
service (the graph step then runs with real seeds: on a cold Neo4j the probe
alone left the first real neighbours query at 800 ms), and `/health/ready`
answers 503 naming `warm` until it has, so a load balancer (or `make run`'s
banner) sends the first real query to a warm process.

A store that is down or not yet set up is retried until `deadline_s`; after
that the process reports ready anyway (its own store checks say what is down)
and the log says which path stayed cold.

An index that is still empty gives the graph step no seed, and Neo4j's first
neighbours query over real rows is the slow one (about 1 s after a restart of
Neo4j here). So while the warm-up query finds no hit, it is sent again every
`reseed_s` in the background (readiness does not wait for it: an empty index
has nothing to answer anyway) until the first documents are indexed, for at
most `reseed_for_s`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from api.search import Query, SearchService
from core.logs import get_logger
from core.types import CurrentProfile, GraphStore, StoreError, VectorStore

log = get_logger(__name__)

PROBE_TEXT = "docstream warm-up probe"
# No chunk has this id (chunk ids are uuid5 of a doc id): the neighbours query
# is planned and run against the real graph and finds nothing.
PROBE_CHUNK_ID = "00000000-0000-0000-0000-000000000000"
GRAPH_EDGES = ("next", "links_to", "mentions")


@dataclass
class Warmup:
    profile: CurrentProfile
    vectors: VectorStore
    graph: GraphStore
    search: SearchService | None = None
    deadline_s: float = 120.0
    retry_s: float = 1.0
    reseed_s: float = 2.0
    reseed_for_s: float = 900.0
    done: bool = False
    seeded: bool = False  # the warm-up query found hits: its graph step ran
    reseeding: asyncio.Task[None] | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    async def check(self) -> None:
        """A readiness check: fails until the warm-up has run."""
        if not self.done:
            raise RuntimeError("warming up the query path")

    async def run(self) -> None:
        """Each step once, retrying a step whose store is not ready yet."""
        started = time.monotonic()
        vector: list[float] = []

        async def embed() -> None:
            nonlocal vector
            embedder = self.profile.embedder
            vector = list((await asyncio.to_thread(embedder.embed, [PROBE_TEXT]))[0])

        steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("embed", embed),
            ("dense", lambda: self.vectors.search(vector, 1)),
            ("lexical", lambda: self.vectors.search_lexical(PROBE_TEXT, 1)),
            ("graph", lambda: self.graph.neighbours([PROBE_CHUNK_ID], 1, GRAPH_EDGES)),
        ]
        cold = [name for name, step in steps if not await self._step(name, step, started)]
        if self.search is not None and not await self._step("query", self._query, started):
            cold.append("query")
        self.done = True
        log.info(
            "query path warmed" if not cold else "query path partly warmed",
            extra={"timings_ms": self.timings_ms, "cold": cold},
        )
        if self.search is not None and "query" not in cold and not self.seeded:
            self.reseeding = asyncio.create_task(self._warm_when_seeded())

    async def _step(self, name: str, step: Callable[[], Awaitable[object]], started: float) -> bool:
        while True:
            began = time.perf_counter()
            try:
                await step()
            except StoreError as exc:  # down or not set up yet: the store checks report it
                if time.monotonic() - started > self.deadline_s:
                    log.warning("warm-up step gave up", extra={"step": name, "error": repr(exc)})
                    return False
                await asyncio.sleep(self.retry_s)
                continue
            self.timings_ms[name] = round((time.perf_counter() - began) * 1000, 1)
            return True

    async def _query(self) -> None:
        """One query as a user sends it; a store that degraded it is retried."""
        assert self.search is not None
        events = [event async for event in self.search.run(Query(PROBE_TEXT))]
        degraded = [e.data for e in events if e.kind == "degraded"]
        if degraded:
            raise WarmupDegraded("warm-up", f"the query was degraded: {degraded}")
        self.seeded = any(e.kind == "hit" for e in events)

    async def _warm_when_seeded(self) -> None:
        """The warm-up query again, until the index has something to find."""
        until = time.monotonic() + self.reseed_for_s
        while not self.seeded and time.monotonic() < until:
            await asyncio.sleep(self.reseed_s)
            began = time.perf_counter()
            try:
                await self._query()
            except StoreError:
                continue  # a store down now: its own checks say so; try again later
        if self.seeded:
            took_ms = round((time.perf_counter() - began) * 1000, 1)
            log.info(
                "query path warmed over the first indexed documents",
                extra={"query_ms": took_ms},
            )


class WarmupDegraded(StoreError):
    """A store answered the warm-up query late or not at all: try it again."""
