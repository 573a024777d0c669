"""A new query's embedding time on each inference backend: what `embed_ms` in
a query's `done` event is made of when its text has not been seen before.

The API embeds a query that is not in its cache with one `embed` call of one
text, on a worker thread (`api/search.py`). This bench makes the same call,
in this process, for SciFact dev's queries (each text new: no cache), on each
backend of `streams/embedding/backend.py` in turn, in interleaved rounds so
that a busy moment of the machine falls on all of them alike; it prints the
p50 and p95 milliseconds per query next to `torch` (the baseline: the path
every query took before the ONNX backends).

    .venv/bin/python -m bench.query_embed                        # 200 queries, 3 rounds
    .venv/bin/python -m bench.query_embed --queries 809 --backend torch,onnx

A JSON record goes to bench/results/query_embed.json (or --json-out).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import scifact
from bench.corpora import load_average, record_header
from bench.pipeline import write_record
from core.settings import Settings
from streams.embedding.model import SentenceTransformerEmbedder


def queries(dataset: Path, limit: int) -> list[str]:
    with scifact.path(dataset, "queries.jsonl").open() as rows:
        texts = [json.loads(row)["text"] for row in rows]
    return texts[:limit]


def per_query_ms(embedder: SentenceTransformerEmbedder, texts: list[str]) -> list[float]:
    out = []
    for text in texts:
        started = time.perf_counter()
        embedder.embed([text])
        out.append(1000 * (time.perf_counter() - started))
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, default=scifact.DATASET)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", default="torch,onnx,onnx-int8")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)

    started_load = load_average()
    texts = queries(args.dataset, args.queries)
    settings = Settings.from_env().embedder
    embedders: dict[str, SentenceTransformerEmbedder] = {}
    for name in args.backend.split(","):
        embedder = SentenceTransformerEmbedder(replace(settings, device="cpu", backend=name))
        if embedder.backend != name:
            print(f"{name}: did not load (it runs {embedder.backend}); left out", flush=True)
            continue
        embedder.embed(texts[:8])  # warm-up
        embedders[name] = embedder
    timings: dict[str, list[float]] = {name: [] for name in embedders}
    for _ in range(args.rounds):
        for name, embedder in embedders.items():
            timings[name] += per_query_ms(embedder, texts)
    rows: dict[str, dict[str, Any]] = {}
    base = statistics.median(timings["torch"]) if "torch" in timings else None
    print(f"\n{len(texts)} SciFact dev queries, one text per call, {args.rounds} rounds")
    for name, values in timings.items():
        p50, p95 = statistics.median(values), percentile(values, 0.95)
        rows[name] = {"p50_ms": round(p50, 2), "p95_ms": round(p95, 2)}
        vs = f"  ({base / p50:.2f}x torch's p50)" if base and name != "torch" else ""
        print(f"  {name:10} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms{vs}", flush=True)
    write_record(
        "query_embed",
        {
            **record_header("query_embed", started_load, argv),
            "queries": len(texts),
            "rounds": args.rounds,
            "backends": rows,
        },
        args.json_out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
