"""Rebuild throughput: `docstream rebuild` (ops/jobs/rebuild.py) into fresh
generations, next to each store's bulk ceiling measured in the same run.

1. Publishes N synthetic EmbeddedChunk events straight to `chunks.embedded` on
   topics of its own: SciFact abstracts cut into ~60-word chunks (one document
   per abstract, some linking to others), random unit vectors instead of a model.
2. Ceilings, no I/O: the full Avro codec, the rebuild's fast decoder (with
   the event's validation, as the bulk path runs it) and the same plus the
   reduction to final state; each store's own Python work per chunk (BM25
   terms for Qdrant, entity extraction for Neo4j).
3. Bulk ceiling per store: the same chunks, already decoded and reduced, in
   batches of `--batch` (whole documents), through the store's bulk path
   (`BulkCreate.create`: Qdrant upserts with the index deferred, Neo4j UNWIND
   CREATE) into a fresh generation, no Kafka, then `activate` (the index build,
   timed apart). So each rebuild below replaces a full index and drops it.
4. Rebuild: `TargetRebuild` per target (and `all`: both at once), timed from
   start to done (and to the switch), with the time of each phase, CPU per
   chunk by process and the bench process's peak memory while it ran.

Needs the local stack (started if it is down, and left running). Cleans up its
topics, consumer groups, Neo4j nodes and Qdrant folder, even on failure.

    .venv/bin/python -m bench.rebuild --targets all        # 100,000 chunks, edge engine
    .venv/bin/python -m bench.rebuild --chunks 2000 --engines local --targets qdrant
    .venv/bin/python -m bench.rebuild --targets qdrant neo4j all
    .venv/bin/python -m bench.rebuild --targets all --engines edge server

`--engines` runs the whole bench once per engine, one after the other, and
prints the rebuilds side by side; `server` is a Qdrant server of the run's own
(QDRANT_BIN, else `qdrant` on PATH), which builds its HNSW graph in its own
threads where the embedded engine builds it in the rebuilding process.
`--engines local` (qdrant-client's local mode) scans every point for each
delete, so its time grows with the square of --chunks: keep it small. A JSON
record goes to bench/results/rebuild.json (or --json-out).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.corpora import delete_graph
from bench.measure import Span, cpu_rate, measured, rate
from bench.pipeline import VectorEngine, shared_stack, vector_engine, write_record
from bench.rebuild_events import DIMENSION, VECTORS, Message, publish, synthetic_events
from bench.rebuild_report import TARGET_RATE, report
from core.kafka.admin import admin_client, ensure_topics
from core.settings import Settings
from core.types import Generations, IndexedChunk, WritePlan
from ops.composition import vector_generations, vector_store
from ops.jobs.bulk import bulk_event, bulk_for, reduce_events
from ops.jobs.rebuild import Progress, Rebuild, Target, TargetRebuild
from schemas.codec import Codecs
from schemas.events import EmbeddedChunk
from schemas.fast import FastDecoder
from sinks.neo4j.entities import extract_entities
from sinks.neo4j.generations import GraphGenerations
from sinks.neo4j.store import SCHEMA, Neo4jGraphStore
from sinks.plan import plan_writes
from sinks.qdrant.lexical import Bm25
from streams.records import sink_event

REPO = Path(__file__).resolve().parents[1]


# --- measuring --------------------------------------------------------------------


def plans_of(records: Sequence[dict[str, Any]], batch: int) -> list[WritePlan]:
    events = [sink_event(EmbeddedChunk.from_record(r), "bench") for r in records]
    return [plan_writes(events[i : i + batch]) for i in range(0, len(events), batch)]


def bulk_chunks(values: Sequence[bytes], codecs: Codecs) -> list[IndexedChunk]:
    """What the bulk path writes: decoded fast, reduced to the final state."""
    fast = FastDecoder(codecs.embedded).decode
    events = [bulk_event(EmbeddedChunk.from_record(fast(v)), "bench") for v in values]
    return reduce_events(events).upserts


def bulk_batches(chunks: Sequence[IndexedChunk], batch: int) -> list[list[IndexedChunk]]:
    """Batches of about `batch` chunks, each document whole in one of them."""
    batches: list[list[IndexedChunk]] = [[]]
    for chunk in chunks:
        if len(batches[-1]) >= batch and chunk.doc_id != batches[-1][-1].doc_id:
            batches.append([])
        batches[-1].append(chunk)
    return batches


def ceilings(messages: Sequence[Message], codecs: Codecs, batch: int) -> dict[str, float]:
    """Chunks/s of the Python work a rebuild does per chunk, without any I/O."""
    values = [value for _, value, _ in messages]
    decode = codecs.embedded.decode
    records: list[dict[str, Any]] = []
    out = {"avro_decode": cpu_rate(len(values), lambda: records.extend(map(decode, values)))}
    fast = FastDecoder(codecs.embedded).decode
    out["fast_decode"] = cpu_rate(
        len(values), lambda: [EmbeddedChunk.from_record(fast(v)) for v in values]
    )
    out["fast_decode_and_reduce"] = cpu_rate(len(values), lambda: bulk_chunks(values, codecs))
    out["decode_and_plan"] = cpu_rate(
        len(values), lambda: plans_of([decode(v) for v in values], batch)
    )
    texts = [f"{r['title']}\n{r['text']}" for r in records]
    bm25 = Bm25()
    # The stemmer's cache starts cold in a fresh process and is warm in a worker.
    for label in ("qdrant_bm25_cold", "qdrant_bm25_warm"):
        out[label] = cpu_rate(len(texts), lambda: [bm25.document(t) for t in texts])
    out["neo4j_entities"] = cpu_rate(
        len(records), lambda: [extract_entities(r["text"]) for r in records]
    )
    return out


# --- the stores -------------------------------------------------------------------


@dataclass
class Stores:
    settings: Settings
    targets: dict[str, Target]
    close: Callable[[], Awaitable[None]]


async def open_stores(settings: Settings) -> Stores:
    vectors = vector_store(settings, DIMENSION)
    await vectors.ensure_schema()
    graph = Neo4jGraphStore(settings.neo4j)
    # Only the idempotent CREATEs: `ensure_schema` would also adopt untagged
    # nodes of the shared database into this bench's graph (and its cleanup).
    for statement in SCHEMA:
        if statement.startswith("CREATE"):
            await graph.driver.execute_query(statement)
    graph_gens = GraphGenerations(graph)
    targets = {
        "qdrant": Target("qdrant", vectors, vector_generations(vectors)),
        "neo4j": Target("neo4j", graph, graph_gens),
    }

    async def close() -> None:
        await vectors.close()
        await graph.close()

    return Stores(settings, targets, close)


async def bulk_ceiling(
    target: Target, batches: Sequence[list[IndexedChunk]], pids: dict[str, int]
) -> tuple[Span, float]:
    """The store's bulk path alone: every batch created in a fresh generation,
    then `activate` (where the deferred index is built; its seconds returned
    apart); the generation it replaces is dropped."""
    gens: Generations = target.generations
    gen = await gens.begin()
    bulk = bulk_for(target.store.pinned(gen))
    with measured(pids) as span:
        for part in batches:
            started = time.perf_counter()
            await bulk.create(part)
            span.slowest = max(span.slowest, time.perf_counter() - started)
        indexing = time.perf_counter()
        previous = await gens.activate(gen)
        index_s = time.perf_counter() - indexing
    if previous != gen:
        await gens.drop(previous)
    return span, index_s


@dataclass
class RebuildRun:
    name: str
    span: Span
    progress: list[Progress]
    phases: dict[str, dict[str, float]]  # target → phase → seconds since start
    peak_rss_mb: float  # the bench process's resident memory at its highest, during the run
    start_rss_mb: float  # … when the run began (the published events, the ceilings' data)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run_rebuild(
    name: str,
    targets: list[Target],
    settings: Settings,
    codecs: Codecs,
    batch: int,
    pids: dict[str, int],
) -> RebuildRun:
    parts = [TargetRebuild(t, settings.kafka, codecs, bulk_batch=batch) for t in targets]
    phases: dict[str, dict[str, float]] = {t.name: {} for t in targets}
    peak = start = rss_mb()
    with measured(pids) as span:
        started = time.perf_counter()
        rebuild = Rebuild(parts)
        rebuild.start()
        while rebuild.running:  # the first moment each phase is seen
            for part in parts:
                seen = phases[part.target.name]
                seen.setdefault(part.progress.phase, time.perf_counter() - started)
            peak = max(peak, rss_mb())
            await asyncio.sleep(0.02)
        assert rebuild.task is not None
        progress = await rebuild.task
    for part in parts:
        phases[part.target.name].setdefault("done", span.wall)
    return RebuildRun(name, span, progress, phases, peak, start)


# --- cleanup ----------------------------------------------------------------------


async def drop_graph(stores: Stores) -> None:
    store = stores.targets["neo4j"].store
    assert isinstance(store, Neo4jGraphStore)
    await delete_graph(store, stores.settings.neo4j.graph)


def drop_kafka(settings: Settings) -> None:
    """The bench's topics, and the consumer groups its rebuilds made."""
    admin = admin_client(settings.kafka)
    futures = dict(admin.delete_topics(settings.kafka.topics.all(), operation_timeout=30))
    listed = admin.list_consumer_groups(request_timeout=30).result()
    prefix = f"{settings.kafka.group_id}."
    groups = [g.group_id for g in listed.valid if g.group_id.startswith(prefix)]
    if groups:
        futures.update(admin.delete_consumer_groups(groups, request_timeout=30))
    for name, future in futures.items():
        try:
            future.result(timeout=30)
        except Exception as exc:  # say what was left behind, but finish the cleanup
            print(f"cleanup: {name}: {exc}", file=sys.stderr)


# --- the run ----------------------------------------------------------------------


def bench_settings(run: str, vectors: VectorEngine) -> Settings:
    """A run of its own: topics, group, graph, and its Qdrant (bench.pipeline)."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "QDRANT_URL"},
        "DOCSTREAM_TOPIC_PREFIX": f"{run}.",
        "DOCSTREAM_GROUP_ID": run,
        "NEO4J_GRAPH": run,
        **vectors.env,
    }
    return Settings.from_env(env)


def engine_name(settings: Settings) -> str:
    return settings.qdrant.engine if settings.qdrant.embedded else "server"


async def measure(
    args: argparse.Namespace, settings: Settings, pids: dict[str, int]
) -> dict[str, Any]:
    codecs = Codecs.create()
    wanted = ["qdrant", "neo4j"] if "all" in args.targets else sorted(set(args.targets))
    messages, docs = synthetic_events(args.chunks, codecs, args.seed, args.vectors)
    ensure_topics(settings.kafka)
    publish_s = publish(settings, messages)
    print(
        f"{len(messages)} EmbeddedChunk events ({docs} SciFact documents, "
        f"{sum(len(v) for _, v, _ in messages) / len(messages):.0f} bytes each) published in "
        f"{publish_s:.1f} s; engine {engine_name(settings)}; {args.vectors} vectors; "
        f"batch {args.batch}; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores",
        flush=True,
    )
    limits = ceilings(messages, codecs, args.batch)
    batches = bulk_batches(bulk_chunks([v for _, v, _ in messages], codecs), args.batch)
    stores = await open_stores(settings)
    try:
        bulk: dict[str, Span] = {}
        index_s: dict[str, float] = {}
        for name in wanted:
            bulk[name], index_s[name] = await bulk_ceiling(stores.targets[name], batches, pids)
            print(f"  bulk ceiling {name}: {bulk[name].wall:.1f} s", flush=True)
        runs = []
        for choice in args.targets:
            chosen = wanted if choice == "all" else [choice]
            run = await run_rebuild(
                choice, [stores.targets[n] for n in chosen], settings, codecs, args.batch, pids
            )
            print(f"  rebuild {choice}: {run.span.wall:.1f} s", flush=True)
            runs.append(run)
    finally:
        try:
            await drop_graph(stores)
        finally:
            await stores.close()
    chunks = len(messages)
    rows = report(chunks, limits, bulk, index_s, runs)
    return {
        "bench": "rebuild",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "load_average_at_start": args.load_average,
        "engine": engine_name(settings),
        "vectors": args.vectors,
        "chunks": chunks,
        "documents": docs,
        "batch": args.batch,
        "partitions": settings.kafka.partitions,
        "publish_chunks_per_s": rate(chunks, publish_s),
        "ceilings_chunks_per_s": limits,
        "bulk_ceiling": {
            n: {"chunks_per_s": rate(chunks, s.wall), "index_build_s": index_s[n], **s.as_dict()}
            for n, s in bulk.items()
        },
        "rebuilds": rows,
        "rebuild_spans": {run.name: run.span.as_dict() for run in runs},
        "target_chunks_per_s": TARGET_RATE,
        "target_met": all(row["meets_target"] for row in rows),
        "argv": sys.argv[1:],
    }


def main(argv: list[str] | None = None) -> int:
    logging.getLogger("neo4j.notifications").setLevel(logging.ERROR)  # deprecation chatter
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument(
        "--engines",
        nargs="+",
        choices=["edge", "local", "server"],
        default=["edge"],
        help="the Qdrant to rebuild into, one run each in turn: embedded (Qdrant Edge, "
        "qdrant-client's local mode) or a server of the run's own (QDRANT_BIN, else "
        "`qdrant` on PATH)",
    )
    parser.add_argument(
        "--targets",
        nargs="+",
        choices=["qdrant", "neo4j", "all"],
        default=["qdrant", "neo4j"],
        help="rebuilds to run, in order; all = both stores at once",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--vectors",
        choices=VECTORS,
        default="random",
        help="random unit vectors (the hardest case for the HNSW build) or clustered ones, "
        "closer to a model's",
    )
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    args.load_average = os.getloadavg()
    records = {engine: run_engine(args, engine) for engine in args.engines}
    if len(records) > 1:
        print_engines(records)
    write_record("rebuild", {"bench": "rebuild", "engines": records}, args.json_out)
    return 0


def run_engine(args: argparse.Namespace, engine: str) -> dict[str, Any]:
    """One whole run (its own topics, graph and Qdrant) into one engine. A
    server is the run's own, started here and stopped after: its CPU is
    counted as `qdrant`."""
    run = f"bench-rb-{uuid.uuid4().hex[:6]}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-rb-qdrant-"))
    try:
        with vector_engine(engine, workdir, run) as vectors:
            settings = bench_settings(run, vectors)
            services = shared_stack(settings, vectors)  # left running: the stack is shared
            try:
                return asyncio.run(measure(args, settings, services.pids))
            finally:
                drop_kafka(settings)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def print_engines(records: dict[str, dict[str, Any]]) -> None:
    """Each rebuild on every engine, side by side: chunks/s to the switch, the
    index build of the store's bulk ceiling, and CPU ms per chunk of this
    process (the rebuild) and of a Qdrant server."""
    print("\nside by side, chunks/s from start to switch (CPU ms per chunk: bench / qdrant)")
    print(f"| {'rebuild':24} | " + " | ".join(f"{e:>24}" for e in records) + " |")
    print("|" + "-" * 26 + "|" + "|".join("-" * 26 for _ in records) + "|")
    first = next(iter(records.values()))
    for i, row in enumerate(first["rebuilds"]):
        cells = []
        for record in records.values():
            this = record["rebuilds"][i]
            cpu = record["rebuild_spans"][this["run"]]["cpu_s"]
            per = [1000 * cpu.get(k, 0.0) / record["chunks"] for k in ("bench", "qdrant")]
            cells.append(f"{this['to_switch_chunks_per_s']:>8.0f} ({per[0]:5.2f} / {per[1]:5.2f})")
        print(
            f"| {row['target'] + ' (' + row['run'] + ')':24} | "
            + " | ".join(f"{c:>24}" for c in cells)
            + " |"
        )
    for engine, record in records.items():
        build = record["bulk_ceiling"].get("qdrant", {}).get("index_build_s")
        print(f"{engine}: index build (activate) of the Qdrant bulk ceiling {build} s")


if __name__ == "__main__":
    raise SystemExit(main())
