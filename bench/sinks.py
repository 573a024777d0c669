"""The sinks' own cost on the live path, per chunk, with the graph already
holding 10,000 and then 100,000 chunks: the Neo4j live write as it was before
issue 18 (`bench/neo4j_before.py`) next to the one the sink runs now
(`sinks/neo4j/live.py`), in the same run, on the same graph.

1. Seed a graph of its own (NEO4J_GRAPH `bench-sinks-<pid>`, dropped at the
   end) through the bulk path, without the embedder: SciFact abstracts and
   varied copies of them (`bench.query`'s texts), 4 chunks per document, with
   the rule-based entities, so the entity nodes are as shared (as high-degree)
   as in a real corpus.
2. At each size, write --chunks new chunks (new documents) in live-sized
   batches (--batch, the sink's batch) with each path, and read the Neo4j
   server's CPU seconds from /proc around the writes (`bench/measure.py`):
   CPU ms per chunk. Then write the new path's chunks again as version 2 (an
   update: every chunk's old edges replaced) and price that too.
3. The Qdrant sink: the same new chunks (random unit vectors) into a Qdrant
   Edge store in a temporary folder seeded with --qdrant-seed chunks, timed
   with this process's CPU clock around its `write` (Qdrant Edge runs in this
   process: its threads count too). BM25 sparse vectors are computed as the
   live sink computes them.

Targets (issue 18): Neo4j <= 1 ms per chunk, flat (within 20%) from 10k to
100k; the Qdrant sink <= 0.5 ms. On a shared machine the server's CPU time
still counts only its own work (plus its idle housekeeping, about 1 CPU-second
a minute, printed as measured over an idle pause).

    .venv/bin/python -m bench.sinks                          # 10k and 100k
    .venv/bin/python -m bench.sinks --sizes 10000 --chunks 1000

Reads the stack's Neo4j process from DOCSTREAM_STACK_DIR (or --neo4j-pid).
The JSON record goes to bench/results/sinks.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench import scifact
from bench.corpora import load_average, record_header
from bench.neo4j_before import apply_before
from bench.pipeline import write_record
from bench.query import chunk_texts, load_dataset
from core.ids import chunk_id
from core.settings import Settings
from core.types import IndexedChunk, WritePlan
from sinks.neo4j.bulk import Neo4jBulk
from sinks.neo4j.live import apply_plan
from sinks.neo4j.store import Neo4jGraphStore
from sinks.qdrant.edge import EdgeVectorStore
from tools.stack.local import LocalStack

CHUNKS_PER_DOC = 4
SEED_BATCH = 1000
DIMENSION = 384
NEO4J_TARGET_MS = 1.0
FLAT_WITHIN = 0.20
QDRANT_TARGET_MS = 0.5
Apply = Callable[[Any, WritePlan, str], Awaitable[None]]


class Corpus:
    """Chunk i is always the same text, document and vector: seeds and new
    chunks are ranges of one sequence, so nothing is written twice by mistake."""

    def __init__(self, count: int, dataset: Path) -> None:
        abstracts, _ = load_dataset(dataset)
        self.texts = chunk_texts(abstracts, count)
        rng = np.random.default_rng(5)
        vectors = rng.standard_normal((1000, DIMENSION)).astype(np.float32)
        self.vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def chunks(self, start: int, end: int, version: int = 1) -> list[IndexedChunk]:
        return [self.chunk(i, version) for i in range(start, end)]

    def chunk(self, i: int, version: int = 1) -> IndexedChunk:
        doc_id, index = f"bench-{i // CHUNKS_PER_DOC}", i % CHUNKS_PER_DOC
        title, text = self.texts[i]
        return IndexedChunk(
            chunk_id=chunk_id(doc_id, index),
            doc_id=doc_id,
            version=version,
            index=index,
            chunk_count=CHUNKS_PER_DOC,
            title=title,
            text=text,
            vector=self.vectors[i % len(self.vectors)].tolist(),
            correlation_id="bench",
            source="scifact",
            # A citation per document, to the one before it: LINKS_TO edges too.
            links=[f"bench-{i // CHUNKS_PER_DOC - 1}"] if i >= CHUNKS_PER_DOC else [],
        )


async def apply_live(tx: Any, plan: WritePlan, graph: str) -> None:
    """The live sink's write as it is now (`Neo4jGraphStore.write`'s transaction)."""
    await apply_plan(tx, plan, graph)


def batches(chunks: list[IndexedChunk], size: int) -> list[list[IndexedChunk]]:
    return [chunks[i : i + size] for i in range(0, len(chunks), size)]


def server_cpu_s(pid: int) -> float:
    """The server's CPU seconds so far, summed over its threads from schedstat
    (nanoseconds: a batch takes a few clock ticks of /proc/<pid>/stat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):  # a thread that ended
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def neo4j_pid(settings: Settings, given: int | None) -> int:
    if given:
        return given
    for service in LocalStack(settings).status():
        if service.name == "neo4j" and service.pid is not None:
            return service.pid
    raise SystemExit("no local Neo4j process found: set DOCSTREAM_STACK_DIR or pass --neo4j-pid")


async def seed(store: Neo4jGraphStore, corpus: Corpus, start: int, end: int) -> float:
    """Chunks [start, end) through the bulk path: what a rebuild writes."""
    bulk, began = Neo4jBulk(store), time.perf_counter()
    for batch in batches(corpus.chunks(start, end), SEED_BATCH):
        await bulk.create(batch)
    return time.perf_counter() - began


async def live_writes(
    store: Neo4jGraphStore, paths: dict[str, tuple[Apply, list[IndexedChunk]]], batch: int, pid: int
) -> dict[str, dict[str, float]]:
    """Each path writes its chunks in live-sized batches, one transaction each,
    as the sink does (the first batch, which plans the statements, not
    counted); the paths take turns batch by batch, in order, the first
    path last every other turn, so a burst of other work on a shared server weighs on all
    of them alike. Per chunk: the
    server's CPU over the whole run and the median batch's (which a burst
    moves least), this process's CPU (rows, driver) and the wall time."""
    graph = store.settings.graph
    spent: dict[str, list[tuple[float, float, float, int]]] = {name: [] for name in paths}
    names = list(paths)
    for number, turn in enumerate(range(0, max(len(c) for _, c in paths.values()), batch)):
        # Every other turn the first path goes last, so it does not always open
        # the turn (and inherit the server work the last path left behind: a
        # flush, a GC); the rest keep their order (an update follows its create).
        for name in names if number % 2 == 0 else names[1:] + names[:1]:
            apply, chunks = paths[name]
            part = chunks[turn : turn + batch]
            plan = WritePlan(upserts=part, chunk_counts={c.doc_id: c.chunk_count for c in part})
            server, client, began = server_cpu_s(pid), time.process_time(), time.perf_counter()
            async with store.driver.session() as session:
                await session.execute_write(apply, plan, graph)
            wall, client = time.perf_counter() - began, time.process_time() - client
            if turn:  # the first turn plans each path's statements: not counted
                spent[name].append((server_cpu_s(pid) - server, client, wall, len(part)))
    out = {}
    for name, rows in spent.items():
        count = sum(r[3] for r in rows)
        per_batch = [r[0] * 1000 / r[3] for r in rows if r[3]]
        out[name] = {
            "neo4j_ms_per_chunk": round(sum(r[0] for r in rows) * 1000 / count, 3),
            "neo4j_median_batch_ms_per_chunk": round(statistics.median(per_batch), 3),
            "bench_ms_per_chunk": round(sum(r[1] for r in rows) * 1000 / count, 3),
            "wall_ms_per_chunk": round(sum(r[2] for r in rows) * 1000 / count, 3),
        }
    return out


async def idle_ms_per_s(pid: int, seconds: float = 5.0) -> float:
    """Neo4j's CPU while nothing is written: the housekeeping every figure includes."""
    before = server_cpu_s(pid)
    await asyncio.sleep(seconds)
    return round((server_cpu_s(pid) - before) * 1000 / seconds, 2)


async def degree(store: Neo4jGraphStore) -> dict[str, int]:
    """How shared the busiest entities are: the degree MERGE used to walk."""
    records = await store.query(
        "MATCH (e:Entity {gen: $gen}) WITH e, COUNT { (e)<-[:MENTIONS]-() } AS n "
        "RETURN count(e) AS entities, max(n) AS max_degree, "
        "percentileDisc(n, 0.99) AS p99_degree",
        gen=f"{store.settings.graph}:0",
    )
    return {k: int(v or 0) for k, v in records[0].items()}


async def measure_neo4j(args: argparse.Namespace, settings: Settings) -> list[dict[str, Any]]:
    pid = neo4j_pid(settings, args.neo4j_pid)
    graph = f"bench-sinks-{os.getpid()}"
    # The live sink's store (unpinned: each write reads the active generation,
    # `<graph>:0` here) and the bulk path's, pinned to that same generation.
    store = Neo4jGraphStore(replace(settings.neo4j, graph=graph))
    seeding = store.pinned(f"{graph}:0")
    # Each size adds 2 x --chunks new chunks (one set per path) beyond its seed.
    corpus = Corpus(max(args.sizes) + 2 * args.chunks * len(args.sizes), args.dataset)
    rows: list[dict[str, Any]] = []
    held = 0
    try:
        await store.ensure_schema()
        for size in sorted(args.sizes):
            print(f"seeding the graph to {size} chunks (bulk path)", flush=True)
            seed_s = await seed(seeding, corpus, held, size) if size > held else 0.0
            held = max(held, size)
            old = corpus.chunks(held, held + args.chunks)
            new = corpus.chunks(held + args.chunks, held + 2 * args.chunks)
            held += 2 * args.chunks
            print(f"  writing {args.chunks} new chunks with each path", flush=True)
            row: dict[str, Any] = {"size": size, "seed_s": round(seed_s, 1), **await degree(store)}
            row["idle_ms_per_s"] = await idle_ms_per_s(pid)
            updated = [replace(c, version=2) for c in new]
            paths: dict[str, tuple[Apply, list[IndexedChunk]]] = {
                "before": (apply_before, old),
                "after": (apply_live, new),
                "after_update": (apply_live, updated),
            }
            row.update(await live_writes(store, paths, args.batch, pid))
            rows.append(row)
            print_neo4j_row(row)
    finally:
        await drop_graph(store, graph)
        await seeding.close()
        await store.close()
    return rows


async def drop_graph(store: Neo4jGraphStore, graph: str) -> None:
    """Everything this run wrote, in transactions of bounded size: the edges
    first (DETACH DELETE of an entity with 10,000 mentions in one transaction
    exceeds Neo4j's memory pool), then the nodes."""
    await store.run_auto_commit(
        "MATCH (n)-[r]->() WHERE n.gen STARTS WITH $g "
        "CALL (r) { DELETE r } IN TRANSACTIONS OF 10000 ROWS",
        g=graph,
    )
    await store.run_auto_commit(
        "MATCH (n) WHERE n.gen STARTS WITH $g OR n.name = $g "
        "CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS",
        g=graph,
    )


async def measure_qdrant(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """The Qdrant sink's own CPU per chunk: this process's clock around `write`."""
    corpus = Corpus(args.qdrant_seed + args.chunks, args.dataset)
    with tempfile.TemporaryDirectory(prefix="bench-sinks-") as folder:
        store = EdgeVectorStore(
            replace(settings.qdrant, url="", path=Path(folder), engine="edge"), DIMENSION
        )
        try:
            await store.ensure_schema()
            print(f"seeding a Qdrant Edge store with {args.qdrant_seed} chunks", flush=True)
            for part in batches(corpus.chunks(0, args.qdrant_seed), SEED_BATCH):
                await store.write(WritePlan(upserts=part))
            new = corpus.chunks(args.qdrant_seed, args.qdrant_seed + args.chunks)
            cpu, began = time.process_time(), time.perf_counter()
            for part in batches(new, args.batch):
                await store.write(
                    WritePlan(upserts=part, chunk_counts={c.doc_id: c.chunk_count for c in part})
                )
            wall = time.perf_counter() - began
            cpu = time.process_time() - cpu
        finally:
            await store.close()
    return {
        "size": args.qdrant_seed,
        "ms_per_chunk": round(cpu * 1000 / args.chunks, 3),
        "wall_ms_per_chunk": round(wall * 1000 / args.chunks, 3),
    }


def print_neo4j_row(row: dict[str, Any]) -> None:
    print(
        f"  graph of {row['size']} chunks ({row['entities']} entities, busiest mentioned "
        f"{row['max_degree']} times, p99 {row['p99_degree']}); Neo4j idle "
        f"{row['idle_ms_per_s']} ms CPU/s\n"
        f"    Neo4j CPU per chunk (all / median batch): before {cost(row['before'])}, "
        f"after {cost(row['after'])} (new chunks); an update of them {cost(row['after_update'])}\n"
        f"    client CPU per chunk (rows, driver): before {row['before']['bench_ms_per_chunk']:.3f}"
        f" ms, after {row['after']['bench_ms_per_chunk']:.3f} ms",
        flush=True,
    )


def cost(path: dict[str, float]) -> str:
    return f"{path['neo4j_ms_per_chunk']:.3f} / {path['neo4j_median_batch_ms_per_chunk']:.3f} ms"


def summary(record: dict[str, Any]) -> list[list[str]]:
    """Rows for a report: figure, value, baseline from the same run, target."""
    rows = [
        [
            f"Neo4j live CPU/chunk at {row['size']} chunks (all / median batch)",
            f"{cost(row['after'])} (update {cost(row['after_update'])})",
            f"before {cost(row['before'])}",
            f"<= {NEO4J_TARGET_MS}",
        ]
        for row in record["neo4j"]
    ]
    if len(record["neo4j"]) > 1:
        costs = [r["after"]["neo4j_median_batch_ms_per_chunk"] for r in record["neo4j"]]
        first, last = costs[0], costs[-1]
        growth = last / first - 1 if first else 0.0
        rows.append(
            [
                "Neo4j live cost growth (median batch), smallest to largest graph",
                f"{growth:+.0%}",
                "",
                f"within {FLAT_WITHIN:.0%}",
            ]
        )
    if record.get("qdrant"):
        q = record["qdrant"]
        rows.append(
            [
                f"Qdrant sink CPU ms/chunk ({q['size']} held)",
                f"{q['ms_per_chunk']:.3f}",
                "",
                f"<= {QDRANT_TARGET_MS}",
            ]
        )
    return rows


def print_summary(record: dict[str, Any]) -> None:
    print("\nlive sink cost per chunk (shared machine):")
    for figure, value, baseline, target in summary(record):
        print(f"  {figure:52} {value:24} {baseline:16} target {target}")


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings.from_env()
    record: dict[str, Any] = {"chunks": args.chunks, "batch": args.batch}
    record["neo4j"] = await measure_neo4j(args, settings)
    if args.qdrant_seed >= 0:
        record["qdrant"] = await measure_qdrant(args, settings)
    return record


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--chunks", type=int, default=2000, help="new chunks per path and size")
    parser.add_argument("--batch", type=int, default=64, help="chunks per live batch")
    parser.add_argument(
        "--qdrant-seed", type=int, default=10_000, help="chunks the Qdrant store holds; -1: skip"
    )
    parser.add_argument("--neo4j-pid", type=int, default=None)
    parser.add_argument("--dataset", type=Path, default=scifact.DATASET)
    parser.add_argument("--json-out", type=Path, default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.getLogger("neo4j.notifications").setLevel(logging.ERROR)
    started_load = load_average()
    record = asyncio.run(measure(args))
    print_summary(record)
    write_record("sinks", {**record_header("sinks", started_load, argv), **record}, args.json_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
