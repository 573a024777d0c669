"""The query's graph step at size, for `bench.query --graph`: a graph of the
benchmark's own chunks in the local Neo4j, and the step timed against it next
to the statement it replaced.

The graph is written through the live sink's statement (`sinks/neo4j/live.py`:
documents, chunks, NEXT edges and the entities each chunk mentions, extracted
from its text as the pipeline does), into a graph of its own name per size
(`benchq<chunks>`), once: a later run finds it and reuses it. The benchmark's
chunks beyond SciFact's 5,183 abstracts are windows of abstracts, so an
entity's degree grows with the size, as it would in a corpus that grows.

Each query's seeds are its 3 best dense hits (the default `expand`). For each,
the current step (`Neo4jGraphStore.neighbours`, per_edge 2, every edge kind)
and the one before (`NEIGHBOURS_BEFORE`: shared entities counted over every
chunk that mentions them) run one after the other, alternating which goes
first, over the same Bolt connection pool. Neo4j's own PROFILE of both, on
the query whose step cost the most before, gives the database hits: the work
the database did, apart from the client and the round trip."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bench.query_clients import percentiles
from core.types import IndexedChunk, WritePlan
from sinks.neo4j.store import NEIGHBOURS, Neo4jGraphStore, neighbour_parameters

PER_EDGE = 2
BATCH = 1000

# The default step before issue 27: the MENTIONS part counted every chunk that
# shares an entity with the seed, so its cost followed the entities' degrees.
# The rest of the statement is today's, without `replan=skip`.
MENTIONS_BEFORE = """  MATCH (c)-[:MENTIONS]->(e:Entity)<-[:MENTIONS]-(n:Chunk)
  WHERE 'mentions' IN $edges AND n.doc_id <> c.doc_id
  WITH n, count(e) AS shared
  RETURN n, 'mentions' AS edge, 2 AS preference
  ORDER BY shared DESC, n.chunk_id LIMIT $per_edge
"""


def _statement_before(now: str) -> str:
    """Today's statement with the MENTIONS part (its last UNION branch) as it was."""
    start = now.rindex("  UNION\n") + len("  UNION\n")
    end = now.index("}\n", start)
    before = now[:start] + MENTIONS_BEFORE + now[end:]
    return before.replace("CYPHER replan=skip\n", "")


NEIGHBOURS_BEFORE = _statement_before(NEIGHBOURS)


def graph_name(chunks: int) -> str:
    return f"benchq{chunks}"


async def seed_graph(
    graph: Neo4jGraphStore,
    chunks_between: Callable[[int, int], list[IndexedChunk]],
    total: int,
    held: int,
) -> float:
    """Chunks `held` onwards through the live write, BATCH at a time."""
    started = time.perf_counter()
    for start in range(held, total, BATCH):
        end = min(start + BATCH, total)
        await graph.write(WritePlan(upserts=chunks_between(start, end)))
        if (end // BATCH) % 10 == 0:
            print(f"  graph: {end} chunks, {time.perf_counter() - started:.0f} s", flush=True)
    return time.perf_counter() - started


async def time_steps(graph: Neo4jGraphStore, seeds: Sequence[list[str]]) -> dict[str, Any]:
    """The current step and the one before on each query's seeds, interleaved."""
    now: list[float] = []
    before: list[float] = []
    found = {"now": 0, "before": 0}
    steps: list[tuple[str, list[float], Callable[[list[str]], Awaitable[int]]]] = [
        ("now", now, lambda ids: _current(graph, ids)),
        ("before", before, lambda ids: _before(graph, ids)),
    ]
    for ids in seeds[:3]:  # warm both plans and the page cache
        for _, _, step in steps:
            await step(ids)
    for turn, ids in enumerate(seeds):
        for name, took, step in steps if turn % 2 else reversed(steps):
            started = time.perf_counter()
            found[name] += await step(ids)
            took.append((time.perf_counter() - started) * 1000)
    heaviest = seeds[max(range(len(seeds)), key=lambda i: before[i])]
    return {
        "queries": len(seeds),
        "now_ms": percentiles(now),
        "before_ms": percentiles(before),
        "neighbours_per_query": {k: round(v / len(seeds), 2) for k, v in found.items()},
        "heaviest_db_hits": await db_hits(graph, heaviest),
    }


async def _current(graph: Neo4jGraphStore, ids: list[str]) -> int:
    return len(await graph.neighbours(ids, per_edge=PER_EDGE))


async def _before(graph: Neo4jGraphStore, ids: list[str]) -> int:
    return len(await graph.query(NEIGHBOURS_BEFORE, **_parameters(graph, ids)))


def _parameters(graph: Neo4jGraphStore, ids: list[str]) -> dict[str, Any]:
    # The statement before reads a subset of today's parameters; Neo4j ignores the rest.
    return neighbour_parameters(graph.settings.graph, None, ids, PER_EDGE)


async def db_hits(graph: Neo4jGraphStore, ids: list[str]) -> dict[str, int]:
    """Neo4j's PROFILE of both statements on one query's seeds: database hits."""
    hits = {}
    for name, statement, params in (
        ("now", NEIGHBOURS, _parameters(graph, ids)),
        ("before", NEIGHBOURS_BEFORE, _parameters(graph, ids)),
    ):
        async with graph.driver.session() as session:
            result = await session.run("PROFILE " + statement, **params)
            summary = await result.consume()
        hits[name] = _total_hits(summary.profile or {})
    return hits


def _total_hits(plan: dict[str, Any]) -> int:
    return int(plan.get("dbHits", 0)) + sum(_total_hits(c) for c in plan.get("children", []))


def report_lines(record: dict[str, Any]) -> list[str]:
    lines = [f"graph step, {record['queries']} queries' 3 best dense hits as seeds:"]
    for name, label in (("now_ms", "now"), ("before_ms", "before (baseline)")):
        row = record[name]
        lines.append(
            f"  {label:30} p50 {row['p50']:7.2f}  p95 {row['p95']:7.2f}  p99 {row['p99']:7.2f} ms"
        )
    per = record["neighbours_per_query"]
    hits = record["heaviest_db_hits"]
    lines.append(f"  neighbours per query: now {per['now']}, before {per['before']}")
    lines.append(
        f"  database hits on the heaviest query before: now {hits['now']:,}, "
        f"before {hits['before']:,} (Neo4j's PROFILE)"
    )
    lines.append("  target: p50 <= 2 ms, p95 <= 5 ms")
    return lines
