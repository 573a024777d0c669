"""Query latency at size: concurrent SSE clients against the real API over a
store holding >= 100k chunks, next to the store's own query time.

1. Seed a store folder (reused when it already holds the chunks asked for)
   directly through the store's `write` (BM25 sparse vectors as in the
   pipeline), not through Kafka and the embedder: embedding 100k chunks on a
   CPU takes hours. Chunks: SciFact abstracts, then varied copies (a window of
   one abstract plus a piece of another) up to --chunks. Vectors: the real
   model's for the first --embed abstracts, and each chunk a perturbed copy of
   one of those (noise of norm --noise, renormalised); --embed 0 uses random
   base vectors.
2. Time the store directly (same process, one call at a time) on the queries
   the clients send: dense and lexical top-10, top-30 (the API's depth for
   k=10), a dense search filtered on a metadata key (1 chunk in 20 matches),
   and lexical top-100.
3. Serve the real API (`ops.composition.build_api`) from a child process with
   uvicorn on 127.0.0.1, warm its query-embedding cache with one pass over the
   queries, then run --clients clients for --duration seconds, each sending
   GET /query?q=…&k=10 (Accept: text/event-stream) one after the other, and
   record the time to the first `event: hit` and to `event: done`, and the
   server's own timings from the `done` event, and the server's and the
   clients' CPU per query and the CPU the host stole meanwhile. The clients
   read the stream with a lean socket reader (bench/sse_wire.py); --client
   httpx uses httpx, whose own CPU (about 5 ms an answer here, on the cores
   the server uses) shows in its latencies. With --think 0 (the default)
   the clients keep the server saturated, so latency is 16 / throughput;
   --think S has each client pause about S seconds between queries.
   --graph expands the 3 best hits through the local Neo4j (it must be up):
   the same chunks are written into a graph of their own there, once
   (`bench/graph_step.py`), and the graph step is first timed on its own,
   next to the statement it replaced, on each query's 3 best dense hits.

    .venv/bin/python -m bench.query                          # 100k chunks, 16 clients, 60 s
    .venv/bin/python -m bench.query --chunks 20000 --duration 20
    .venv/bin/python -m bench.query --engines local --chunks 20000 --clients 0
    .venv/bin/python -m bench.query --chunks 11442 --think 1.0 --engines edge server
    .venv/bin/python -m bench.query --chunks 11442 --graph --think 1.0   # SciFact's size

The JSON record goes to bench/results/query.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench import graph_step, scifact
from bench.pipeline import REPO, wait_ready, write_record
from bench.query_clients import CLIENTS, Users, load, percentiles
from core.heap import freeze_startup_heap, thaw_heap
from core.ids import chunk_id
from core.settings import QdrantSettings, Settings
from core.types import IndexedChunk, SearchFilter, WritePlan
from ops.composition import Vectors, build_api, vector_store
from ops.jobs.profile import configured_processing
from sinks.neo4j.store import Neo4jGraphStore
from sinks.qdrant.edge import EdgeVectorStore
from streams.embedding.model import SentenceTransformerEmbedder
from streams.profile import LiveProfile
from tools.stack.local import own_qdrant_server, qdrant_binary
from tools.stack.ports import free_port

CHUNKS_PER_DOC = 4
TEAMS = 20  # metadata["team"] takes this many values: a filter keeps 1/20 of the chunks
BATCH = 1000


def load_dataset(dataset: Path) -> tuple[list[tuple[str, str]], list[str]]:
    with scifact.path(dataset, "corpus.jsonl").open() as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    with scifact.path(dataset, "queries.jsonl").open() as lines:
        queries = [json.loads(line)["text"] for line in lines if line.strip()]
    return [(r["title"], r["text"]) for r in rows], queries


def chunk_texts(abstracts: list[tuple[str, str]], count: int) -> list[tuple[str, str]]:
    rng = random.Random(7)
    texts = []
    for i in range(count):
        title, text = abstracts[i % len(abstracts)]
        if i >= len(abstracts):
            words, other = text.split(), rng.choice(abstracts)[1].split()
            start, cut = (
                rng.randrange(max(1, len(words) - 60)),
                rng.randrange(max(1, len(other) - 40)),
            )
            text = " ".join(words[start : start + 120] + other[cut : cut + 40])
        texts.append((title, text))
    return texts


def base_vectors(
    embedder: SentenceTransformerEmbedder, abstracts: list[tuple[str, str]], count: int
) -> np.ndarray:
    if count == 0:
        return np.random.default_rng(3).standard_normal((1000, embedder.dimension))
    started = time.perf_counter()
    vectors = np.array(embedder.embed([f"{t} {x}" for t, x in abstracts[:count]]))
    print(f"  embedded {count} abstracts in {time.perf_counter() - started:.0f} s", flush=True)
    return vectors


def chunk_vectors(base: np.ndarray, count: int, noise: float) -> np.ndarray:
    rng = np.random.default_rng(5)
    picked = base[np.arange(count) % len(base)]
    jitter = rng.standard_normal(picked.shape)
    jitter *= noise / np.linalg.norm(jitter, axis=1, keepdims=True)
    vectors = picked / np.linalg.norm(picked, axis=1, keepdims=True) + jitter
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def chunk_at(i: int, title: str, text: str, vector: np.ndarray) -> IndexedChunk:
    doc_id, index = f"bench-{i // CHUNKS_PER_DOC}", i % CHUNKS_PER_DOC
    return IndexedChunk(
        chunk_id=chunk_id(doc_id, index),
        doc_id=doc_id,
        version=1,
        index=index,
        chunk_count=CHUNKS_PER_DOC,
        title=title,
        text=text,
        vector=vector.tolist(),
        correlation_id="bench",
        source="scifact",
        metadata={"team": f"t{i % TEAMS}"},
    )


async def seed(
    store: Vectors, texts: list[tuple[str, str]], vectors: np.ndarray, first: int
) -> float:
    """Chunks `first` onwards (those before are in the store already)."""
    started = time.perf_counter()
    for start in range(first, len(texts), BATCH):
        end = min(start + BATCH, len(texts))
        chunks = [chunk_at(i, *texts[i], vectors[i]) for i in range(start, end)]
        await store.write(WritePlan(upserts=chunks))
        if (end // BATCH) % 10 == 0:
            print(f"  {end} chunks, {time.perf_counter() - started:.0f} s", flush=True)
    return time.perf_counter() - started


async def store_size(store: Vectors | Neo4jGraphStore) -> int:
    """Chunks held: every seeded document has CHUNKS_PER_DOC, so probe doc ids."""
    low, high = 0, 1 << 20  # binary search for the first missing document
    while low < high:
        middle = (low + high) // 2
        if await store.count(f"bench-{middle}"):
            low = middle + 1
        else:
            high = middle
    return low * CHUNKS_PER_DOC


async def time_store(
    store: Vectors, queries: list[str], vectors: list[list[float]]
) -> dict[str, dict[str, float]]:
    team = SearchFilter(metadata=(("team", "t3"),))
    calls = {
        "dense top-10": lambda q, v: store.search(v, 10),
        "dense top-30": lambda q, v: store.search(v, 30),
        "dense top-30, metadata filter": lambda q, v: store.search(v, 30, team),
        "lexical top-10": lambda q, v: store.search_lexical(q, 10),
        "lexical top-30": lambda q, v: store.search_lexical(q, 30),
        "lexical top-100": lambda q, v: store.search_lexical(q, 100),
    }
    results = {}
    for name, call in calls.items():
        await call(queries[0], vectors[0])  # warm
        took = []
        for query, vector in zip(queries, vectors, strict=True):
            started = time.perf_counter()
            await call(query, vector)
            took.append((time.perf_counter() - started) * 1000)
        results[name] = percentiles(took)
    return results


def settings_for(path: Path, engine: str, url: str = "") -> Settings:
    """The store in `path` (embedded `engine`), or on the server at `url`."""
    settings = Settings.from_env()
    return replace(
        settings,
        qdrant=QdrantSettings(url=url) if url else QdrantSettings(path=path, engine=engine),
        api=replace(settings.api, rate_limit_per_s=0),
        log_level="WARNING",
    )


def serve(path: Path, engine: str, url: str, port: int, graph: str | None) -> None:
    """The child process: the real API over the seeded store (and graph)."""
    import uvicorn

    settings = settings_for(path, engine, url)
    if graph is not None:
        settings = replace(settings, neo4j=replace(settings.neo4j, graph=graph))
    embedder = SentenceTransformerEmbedder(settings.embedder)
    vectors = vector_store(settings, embedder.dimension)
    asyncio.run(vectors.ensure_schema())
    profile = LiveProfile(configured_processing(settings, embedder))
    api = build_api(settings, profile, vectors, Neo4jGraphStore(settings.neo4j))
    freeze_startup_heap()  # as `docstream api` does before it serves
    uvicorn.run(api, host="127.0.0.1", port=port, log_level="warning")


async def prepare(
    args: argparse.Namespace, engine: str, path: Path, url: str, queries: list[str]
) -> dict[str, Any]:
    settings = settings_for(path, engine, url)
    embedder = SentenceTransformerEmbedder(settings.embedder)
    store = vector_store(settings, embedder.dimension)
    await store.ensure_schema()
    record: dict[str, Any] = {"seed_s": None}
    try:
        held = await store_size(store)
        abstracts: list[tuple[str, str]] = []
        if held < args.chunks or args.graph:
            abstracts, _ = load_dataset(args.dataset)
        if held < args.chunks:
            print(f"seeding {args.chunks - held} chunks into {path}", flush=True)
            texts = chunk_texts(abstracts, args.chunks)
            vectors = chunk_vectors(
                base_vectors(embedder, abstracts, args.embed), args.chunks, args.noise
            )
            record["seed_s"] = round(await seed(store, texts, vectors, held), 1)
        if isinstance(store, EdgeVectorStore):
            started = time.perf_counter()
            await store.optimize()
            record["final_optimize_s"] = round(time.perf_counter() - started, 1)
            record["shard"] = await store.info()
        elif url:
            # The server builds its graph in the background after the writes:
            # time it once it is done (green), as a deployment would be.
            started = time.perf_counter()
            await store.build_index(await store.active_generation())
            record["index_wait_s"] = round(time.perf_counter() - started, 1)
        record["chunks"] = await store_size(store)
        print(f"store holds {record['chunks']} chunks; timing it directly", flush=True)
        query_vectors = embedder.embed(queries)
        record["store_ms"] = await time_store(store, queries, query_vectors)
        if args.graph:
            seeds = [[h.chunk_id for h in await store.search(v, 3)] for v in query_vectors]
            record["graph_step"] = await graph_record(settings, abstracts, args.chunks, seeds)
    finally:
        await store.close()
    return record


async def graph_record(
    settings: Settings, abstracts: list[tuple[str, str]], chunks: int, seeds: list[list[str]]
) -> dict[str, Any]:
    """The benchmark's chunks in a graph of their own (written once), and the
    graph step timed there."""
    name = graph_step.graph_name(chunks)
    graph = Neo4jGraphStore(replace(settings.neo4j, graph=name))
    try:
        await graph.ensure_schema()
        held = await store_size(graph)
        record: dict[str, Any] = {"name": name, "seed_s": None}
        if held < chunks:
            print(f"writing {chunks - held} chunks into the graph {name}", flush=True)
            texts = chunk_texts(abstracts, chunks)
            no_vector = np.zeros(0, dtype=np.float32)

            def between(start: int, end: int) -> list[IndexedChunk]:
                return [chunk_at(i, *texts[i], no_vector) for i in range(start, end)]

            record["seed_s"] = round(await graph_step.seed_graph(graph, between, chunks, held), 1)
        print("timing the graph step directly", flush=True)
        return record | await graph_step.time_steps(graph, seeds)
    finally:
        await graph.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--engines",
        nargs="+",
        choices=("edge", "local", "server"),
        default=["edge"],
        help="the Qdrant behind the store and the API, one after the other: embedded "
        "(Qdrant Edge, qdrant-client's local mode) or a server of the bench's own "
        "(QDRANT_BIN, else `qdrant` on PATH; its folder kept and reused like the others)",
    )
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--embed", type=int, default=1000, help="abstracts the model embeds")
    parser.add_argument("--noise", type=float, default=0.35, help="norm of a copy's noise")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument(
        "--think", type=float, default=0.0, help="mean seconds a client waits between queries"
    )
    parser.add_argument("--queries", type=int, default=300, help="SciFact queries used")
    parser.add_argument("--graph", action="store_true", help="expand through the local Neo4j")
    parser.add_argument(
        "--client", choices=CLIENTS, default="raw", help="raw: lean socket reader; httpx: compare"
    )
    parser.add_argument(
        "--dir", type=Path, help="the store folder, with one engine (default: per engine/size)"
    )
    parser.add_argument("--dataset", type=Path, default=scifact.DATASET)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the child: its port
    parser.add_argument("--graph-name", help=argparse.SUPPRESS)  # the child: the graph it reads
    parser.add_argument("--qdrant-url", default="", help=argparse.SUPPRESS)  # the child's server
    args = parser.parse_args()
    if args.dir and len(args.engines) > 1:
        parser.error("--dir names one store folder: give it with one engine")
    if args.serve:
        engine = args.engines[0]
        serve(store_dir(args, engine), engine, args.qdrant_url, args.serve, args.graph_name)
        return

    _, all_queries = load_dataset(args.dataset)
    queries = random.Random(11).sample(all_queries, min(args.queries, len(all_queries)))
    records = {engine: measure_engine(args, engine, queries) for engine in args.engines}
    if len(records) > 1:
        print("\n".join(side_by_side(records)))
    write_record("query", {"engines": records})


def store_dir(args: argparse.Namespace, engine: str) -> Path:
    return Path(args.dir or REPO / ".stack" / "bench" / f"query-{engine}-{args.chunks}")


def measure_engine(args: argparse.Namespace, engine: str, queries: list[str]) -> dict[str, Any]:
    """The store timed directly, then the API under the clients, on one engine.
    A server is the bench's own, on the engine's folder, for this engine's turn."""
    path = store_dir(args, engine)
    with ExitStack() as stack:
        url = ""
        if engine == "server":
            binary = qdrant_binary(os.environ)
            url = stack.enter_context(own_qdrant_server(path, binary)).url
        record = {
            "engine": engine,
            "store": str(path),
            **asyncio.run(prepare(args, engine, path, url, queries)),
        }
        record.update(
            clients=args.clients, duration_s=args.duration, think_s=args.think, graph=args.graph
        )
        if args.clients:
            params = {"k": 10, "expand": 3 if args.graph else 0}
            record["sse"] = run_clients(args, engine, path, url, queries, params)
    report(record)
    return record


def filtered(record: dict[str, Any]) -> dict[str, float]:
    return dict(record["store_ms"]["dense top-30, metadata filter"])


def side_by_side(records: dict[str, dict[str, Any]]) -> list[str]:
    """The figures a choice of engine rests on, one column per engine."""
    rows: list[tuple[str, Any]] = [
        ("store dense top-10 p50 ms", lambda r: r["store_ms"]["dense top-10"]["p50"]),
        ("store lexical top-10 p50 ms", lambda r: r["store_ms"]["lexical top-10"]["p50"]),
        ("store dense top-30 filtered p50 ms", lambda r: filtered(r)["p50"]),
        ("SSE done p50 ms", lambda r: r["sse"]["done_ms"]["p50"]),
        ("SSE done p95 ms", lambda r: r["sse"]["done_ms"]["p95"]),
        ("SSE queries/s", lambda r: r["sse"]["per_s"]),
        ("API CPU ms per query", lambda r: r["sse"]["cpu"]["server_ms_per_query"]),
    ]
    lines = [f"\n  {'side by side':36} " + " | ".join(f"{e:>10}" for e in records)]
    for label, value in rows:
        cells = []
        for record in records.values():
            try:
                cells.append(f"{value(record):>10}")
            except KeyError:  # no clients, or a row this run did not time
                cells.append(f"{'-':>10}")
        lines.append(f"  {label:36} " + " | ".join(cells))
    return lines


def run_clients(
    args: argparse.Namespace,
    engine: str,
    path: Path,
    url: str,
    queries: list[str],
    params: dict[str, Any],
) -> dict[str, Any]:
    port = free_port()
    log_path = path.parent / f"{path.name}-api.log"
    command = [sys.executable, "-m", "bench.query", "--engines", engine, "--serve", str(port)]
    command += ["--qdrant-url", url, "--chunks", str(args.chunks)]
    if args.graph:
        command += ["--graph-name", graph_step.graph_name(args.chunks)]
    with log_path.open("ab") as log:
        server = subprocess.Popen([*command, "--dir", str(path)], cwd=REPO, stdout=log, stderr=log)
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_ready(base_url, server, log_path, probe="/health/live")
        print(f"{args.clients} clients for {args.duration:.0f} s against {base_url}", flush=True)
        # The clients share this process with the model loaded above: keep its
        # heap out of the GC's walks too, or the clients' clock stalls with it.
        freeze_startup_heap()
        try:
            users = Users(args.clients, args.duration, args.think, args.client)
            return asyncio.run(load(base_url, queries, users, params, server_pid=server.pid))
        finally:
            thaw_heap()
    finally:
        server.terminate()
        server.wait(timeout=60)


def row_text(name: str, row: dict[str, float]) -> str:
    return f"  {name:30} p50 {row['p50']:7.2f}  p95 {row['p95']:7.2f}  p99 {row['p99']:7.2f} ms"


def report(record: dict[str, Any]) -> None:
    print(f"\n{record['engine']}: {record['chunks']} chunks; store alone, one call at a time:")
    for name, row in record["store_ms"].items():
        print(row_text(name, row))
    if "graph_step" in record:
        print("\n".join(graph_step.report_lines(record["graph_step"])))
    sse = record.get("sse")
    if not sse:
        return
    print(
        f"SSE GET /query k=10, {record['clients']} {sse['client']} clients "
        f"(think {record['think_s']} s), {record['duration_s']:.0f} s: "
        f"{sse['queries']} queries ({sse['per_s']}/s), {sse['errors']} errors, "
        f"{sse['degraded']} degraded"
    )
    cpu = sse["cpu"]
    print(
        f"  CPU per query: server {cpu['server_ms_per_query']} ms, clients "
        f"{cpu['client_ms_per_query']} ms; CPU stolen by the host: {cpu['steal_pct']}%"
    )
    for name in ("first_hit_ms", "done_ms", "cold_done_ms"):
        if sse[name]["n"]:
            print(row_text(name, sse[name]))
    print("the server's own timings (done event):")
    for name, row in sse["server_ms"].items():
        if row["n"]:
            print(row_text(name, row))


if __name__ == "__main__":
    main()
