"""Where an embedded Qdrant (Edge) generation's fill spends its CPU: the upserts,
or the vector index build.

`bench.rebuild` times Qdrant Edge's bulk ceiling as the rebuild writes: the
store indexes every `OPTIMIZE_AFTER` points itself during the fill (Edge has no
background optimizer, and its `optimize()` holds the GIL, so one build of the
whole generation at the switch would stall the worker for minutes). This bench
splits that ceiling in two, on the same chunks, each run into a fresh shard:

- `periodic`: the store as it is, indexing every `OPTIMIZE_AFTER` points, then
  the switch's `optimize()`;
- `deferred`: every upsert first with indexing off, then one `optimize()` that
  builds the whole index (what a Qdrant server's rebuild does with `m = 0`).

For each: upsert seconds and CPU, index build seconds and CPU, CPU ms per
chunk of each, and the ceiling they set on 2 cores beside the rebuild target.
No Kafka, no Neo4j: chunks are decoded from synthetic events in memory.

The anchor (issue 27): the same HNSW graph (m 16, ef_construct 64, inner
product on the same normalised vectors) built by faiss's `IndexHNSWFlat` in
this process on every core, its CPU per point next to the Edge build's, against
the target of at most 3x. faiss is not a dependency of docstream: without it
(`pip install faiss-cpu`) the anchor is left out and the line says so.

`--vectors random` (the default) keeps the rebuild events' random unit
vectors: no structure, the hardest case for a graph build. `--vectors
clustered` draws normalised points around 200 centres instead
(`bench/rebuild_events.py`), closer to what a model's embeddings look like;
both builds get the same ones.

    .venv/bin/python -m bench.edge_index --vectors clustered

    .venv/bin/python -m bench.edge_index                   # 40,000 chunks
    .venv/bin/python -m bench.edge_index --chunks 10000

A JSON record goes to bench/results/edge_index.json (or --json-out).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import sinks.qdrant.edge as edge_store
from bench.corpora import load_average, record_header
from bench.pipeline import write_record
from bench.rebuild import bulk_batches, bulk_chunks
from bench.rebuild_events import DIMENSION, VECTORS, synthetic_events
from core.settings import Settings
from core.types import IndexedChunk
from schemas.codec import Codecs
from sinks.qdrant.edge import EdgeVectorStore
from sinks.qdrant.generations import QdrantGenerations

TARGET_CHUNKS_PER_S = 5000  # issue target for a rebuild into both stores
TARGET_OF_ANCHOR = 3.0  # Edge's build CPU per point, at most this many times faiss's


def faiss_anchor(chunks: list[IndexedChunk]) -> dict[str, float] | None:
    """faiss's HNSW build on the same vectors and graph parameters as Edge's
    (edge_store.HNSW): wall and CPU seconds, or None without faiss."""
    try:
        import faiss  # type: ignore[import-not-found,import-untyped,unused-ignore]
        import numpy as np
    except ImportError:
        return None
    vectors = np.asarray([c.vector for c in chunks], dtype=np.float32)
    index = faiss.IndexHNSWFlat(vectors.shape[1], edge_store.HNSW.m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = edge_store.HNSW.ef_construct
    wall, cpu = time.perf_counter(), time.process_time()
    index.add(vectors)
    return {
        "build_s": round(time.perf_counter() - wall, 2),
        "build_cpu_s": round(time.process_time() - cpu, 2),
        "threads": faiss.omp_get_max_threads(),
    }


async def fill(
    root: Path, batches: list[list[IndexedChunk]], optimize_after: int
) -> dict[str, float]:
    """Bulk upserts into a fresh generation, then `activate` (its optimize)."""
    settings = replace(Settings.from_env().qdrant, path=root, engine="edge")
    store = EdgeVectorStore(settings, dimension=DIMENSION)
    await store.ensure_schema()
    gens = QdrantGenerations(store)
    gen = await gens.begin()
    pinned = store.pinned(gen)
    default, edge_store.OPTIMIZE_AFTER = edge_store.OPTIMIZE_AFTER, optimize_after
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        for batch in batches:
            await pinned.bulk_upsert(batch)
        upsert_wall, upsert_cpu = time.perf_counter() - wall, time.process_time() - cpu
        wall, cpu = time.perf_counter(), time.process_time()
        await gens.activate(gen)
        build_wall, build_cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        edge_store.OPTIMIZE_AFTER = default
        await store.close()
    return {
        "upsert_s": round(upsert_wall, 2),
        "upsert_cpu_s": round(upsert_cpu, 2),
        "switch_optimize_s": round(build_wall, 2),
        "switch_optimize_cpu_s": round(build_cpu, 2),
    }


def report(name: str, chunks: int, row: dict[str, float]) -> None:
    wall = row["upsert_s"] + row["switch_optimize_s"]
    cpu = row["upsert_cpu_s"] + row["switch_optimize_cpu_s"]
    print(
        f"{name:9} upserts {row['upsert_s']:6.1f} s (CPU {row['upsert_cpu_s']:6.1f} s), "
        f"switch optimize {row['switch_optimize_s']:6.1f} s (CPU "
        f"{row['switch_optimize_cpu_s']:6.1f} s); {chunks / wall:6.0f} chunks/s, "
        f"{1000 * cpu / chunks:.2f} ms CPU per chunk",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--vectors", choices=VECTORS, default="random")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)

    started_load = load_average()
    codecs = Codecs.create()
    messages, _ = synthetic_events(args.chunks, codecs, args.seed, args.vectors)
    chunks = bulk_chunks([value for _, value, _ in messages], codecs)
    batches = bulk_batches(chunks, args.batch)
    del messages
    rows: dict[str, dict[str, float]] = {}
    print(
        f"{len(chunks)} chunks of {DIMENSION} dimensions ({args.vectors} vectors) into "
        "fresh Edge shards",
        flush=True,
    )
    for name, every in (("periodic", edge_store.OPTIMIZE_AFTER), ("deferred", 10**12)):
        root = Path(tempfile.mkdtemp(prefix=f"edge-{name}-"))
        try:
            rows[name] = asyncio.run(fill(root, batches, every))
        finally:
            shutil.rmtree(root, ignore_errors=True)
        report(name, len(chunks), rows[name])
    deferred = rows["deferred"]
    upsert_ms = 1000 * deferred["upsert_cpu_s"] / len(chunks)
    build_ms = 1000 * deferred["switch_optimize_cpu_s"] / len(chunks)
    cores = os.cpu_count() or 1
    print(
        f"\nupserts alone {upsert_ms:.2f} ms CPU per chunk, the index build alone "
        f"{build_ms:.2f} ms: on {cores} cores the vector store by itself caps a rebuild at "
        f"{1000 * cores / (upsert_ms + build_ms):,.0f} chunks/s (target "
        f"{TARGET_CHUNKS_PER_S:,} into both stores)",
        flush=True,
    )
    anchor = faiss_anchor(chunks)
    anchor_ms = None
    if anchor is None:
        print("faiss anchor: left out (pip install faiss-cpu to measure it)", flush=True)
    else:
        anchor_ms = 1000 * anchor["build_cpu_s"] / len(chunks)
        print(
            f"faiss anchor (IndexHNSWFlat, m {edge_store.HNSW.m}, ef_construct "
            f"{edge_store.HNSW.ef_construct}, {anchor['threads']} threads): "
            f"{anchor['build_s']:.1f} s, "
            f"{anchor_ms:.3f} ms CPU per point; Edge's build {build_ms / anchor_ms:.1f}x that "
            f"(target <= {TARGET_OF_ANCHOR:.0f}x)",
            flush=True,
        )
    write_record(
        "edge_index",
        {
            **record_header("edge_index", started_load, argv),
            "chunks": len(chunks),
            "vectors": args.vectors,
            "batch": args.batch,
            "optimize_after": edge_store.OPTIMIZE_AFTER,
            "runs": rows,
            "upsert_cpu_ms_per_chunk": round(upsert_ms, 3),
            "index_build_cpu_ms_per_chunk": round(build_ms, 3),
            "faiss_anchor": anchor,
            "faiss_anchor_cpu_ms_per_point": None if anchor_ms is None else round(anchor_ms, 3),
            "target_of_anchor": TARGET_OF_ANCHOR,
            "target_chunks_per_s": TARGET_CHUNKS_PER_S,
        },
        args.json_out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
