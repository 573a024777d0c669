"""Search quality through the real pipeline, on a BEIR-format dataset.

Publishes the corpus as DocumentEvents to a fresh pipeline (local Kafka, Neo4j,
embedded Qdrant, a worker), waits until every document is indexed, then sends
every query through the HTTP edge in each mode and prints nDCG@10 and
Recall@100 side by side (documents ranked by their best chunk).

    .venv/bin/python -m bench.quality                    # SciFact dev, all queries
    .venv/bin/python -m bench.quality --queries 200      # a faster sample
    .venv/bin/python -m bench.quality --backend torch,onnx-int8   # int8 against torch
    .venv/bin/python -m bench.quality --backend onnx-int8 --torch-ndcg 0.645

--backend sets DOCSTREAM_EMBED_BACKEND for the worker (and its API), which
embeds both the chunks and the queries; the run prints the backend the worker
reports. A comma list runs a fresh pipeline per backend, one after the other,
and compares each one's dense nDCG@10 with the torch run's from the same
invocation: the difference and whether it is within the 0.005 that lets `auto`
choose int8 on a CPU. --torch-ndcg gives torch's figure from another run instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench import scifact
from bench.pipeline import RunningPipeline, pipeline, running_backend, write_record
from core.correlation import mint_correlation_id, mint_traceparent
from ops.publishing.publisher import DocumentPublisher
from ops.publishing.sources import document_from_json
from schemas.codec import codec_for
from schemas.events import DocumentEvent

# name → request fields; "graph" adds the NEXT neighbours of the 10 best hits.
MODES = {
    "lexical (BM25)": {"mode": "lexical", "expand": 0},
    "dense (MiniLM)": {"mode": "dense", "expand": 0},
    "hybrid (RRF)": {"mode": "hybrid", "expand": 0},
    "hybrid + graph": {"mode": "hybrid", "expand": 10},
}
REFERENCE = "published, BEIR test split: BM25 0.665, all-MiniLM-L6-v2 0.645"


def load(
    dataset: Path, limit: int | None
) -> tuple[list[DocumentEvent], dict[str, str], dict[str, set[str]]]:
    with scifact.path(dataset, "corpus.jsonl").open() as stream:
        rows = [json.loads(line) for line in stream if line.strip()]
    docs = [
        document_from_json({"doc_id": r["_id"], "title": r["title"], "text": r["text"]}, r["_id"])
        for r in rows
    ]
    queries = {}
    with scifact.path(dataset, "queries.jsonl").open() as stream:
        for line in stream:
            row = json.loads(line)
            queries[row["_id"]] = row["text"]
    qrels: dict[str, set[str]] = {}
    for line in scifact.path(dataset, "qrels/train.tsv").read_text().splitlines()[1:]:
        query_id, doc_id, score = line.split("\t")
        if int(score) > 0:
            qrels.setdefault(query_id, set()).add(doc_id)
    judged = [q for q in queries if q in qrels]
    chosen = judged[:limit] if limit else judged
    return docs, {q: queries[q] for q in chosen}, qrels


def ndcg_at(ranked: list[str], relevant: set[str], k: int = 10) -> float:
    gain = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if d in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return gain / ideal if ideal else 0.0


def recall_at(ranked: list[str], relevant: set[str], k: int = 100) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant) if relevant else 0.0


def documents_in_order(hits: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for hit in hits:
        seen.setdefault(hit["doc_id"], None)
    return list(seen)


def publish(run: RunningPipeline, docs: list[DocumentEvent]) -> float:
    started = time.monotonic()
    publisher = DocumentPublisher(
        run.settings.kafka, codec_for("DocumentEvent"), mint_correlation_id(), mint_traceparent()
    )
    report = publisher.publish(docs)
    if not report.ok:
        raise RuntimeError(report.summary())
    return time.monotonic() - started


def sample_value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def wait_indexed(run: RunningPipeline, doc_ids: list[str], timeout_s: float) -> float:
    """Watch the worker's metrics (cheap) until every stage has drained, then
    check a sample of documents' status. Polling every document's status would
    load the very worker being measured."""
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=run.base_url, timeout=30) as client:
        while time.monotonic() - started < timeout_s:
            await asyncio.sleep(5)
            text = (await client.get("/metrics")).text
            # Documents the chunker handled, whatever the outcome (it reads them in batches).
            chunked = sample_value(text, "docstream_events_total", stage="chunker")
            embedded = sample_value(text, "docstream_events_total", stage="embedder", outcome="ok")
            written = [
                sample_value(text, "docstream_events_total", stage=sink, outcome="ok")
                for sink in ("qdrant-sink", "neo4j-sink")
            ]
            lag = sum(
                sample_value(text, "docstream_consumer_lag", stage=s)
                for s in ("embedder", "qdrant-sink", "neo4j-sink")
            )
            print(
                f"  {time.monotonic() - started:5.0f} s: chunked {chunked:.0f}/{len(doc_ids)} "
                f"docs, embedded {embedded:.0f} chunks, written {written}, lag {lag:.0f}",
                flush=True,
            )
            if chunked >= len(doc_ids) and lag == 0 and written == [embedded, embedded]:
                break
        else:
            raise RuntimeError(f"not indexed after {timeout_s:.0f} s")
        # One at a time: each status asks both stores, and the embedded Qdrant
        # answers from a single thread.
        sample = random.Random(7).sample(doc_ids, min(100, len(doc_ids)))
        states = [(await client.get(f"/documents/{d}")).json().get("status") for d in sample]
        if states.count("indexed") != len(sample):
            raise RuntimeError(f"sampled statuses: {sorted(set(states))}")
    return time.monotonic() - started


async def evaluate(
    run: RunningPipeline, queries: dict[str, str], qrels: dict[str, set[str]]
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=run.base_url, timeout=60) as client:
        for name, fields in MODES.items():
            ndcg, recall, took = [], [], []
            for query_id, text in queries.items():
                response = await client.post("/query", json={"q": text, "k": 100, **fields})
                response.raise_for_status()
                body = response.json()
                ranked = documents_in_order(body["hits"])
                ndcg.append(ndcg_at(ranked, qrels[query_id]))
                recall.append(recall_at(ranked, qrels[query_id]))
                took.append(body["timings"]["total_ms"])
            took.sort()
            results[name] = {
                "ndcg@10": sum(ndcg) / len(ndcg),
                "recall@100": sum(recall) / len(recall),
                "p50_ms": took[len(took) // 2],
            }
            print(
                f"  {name:16} nDCG@10 {results[name]['ndcg@10']:.3f}  Recall@100 "
                f"{results[name]['recall@100']:.3f}",
                flush=True,
            )
    return results


BACKENDS = ("auto", "torch", "onnx", "onnx-int8")


def backends(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in BACKENDS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"backends are {', '.join(BACKENDS)}; got {value!r}")
    return names


def measure(
    backend: str | None,
    docs: list[DocumentEvent],
    queries: dict[str, str],
    qrels: dict[str, set[str]],
    timeout_s: float,
) -> dict[str, Any]:
    """One fresh pipeline whose worker embeds with `backend`, then every query."""
    if backend:
        os.environ["DOCSTREAM_EMBED_BACKEND"] = backend
    from bench.corpora import cleanup  # bench.corpora imports this module

    # cleanup: the run's topics, graph and Qdrant folder, once the worker stopped.
    with pipeline(f"quality-{backend or 'default'}", cleanup=cleanup) as run:
        publish_s = publish(run, docs)
        index_s = asyncio.run(wait_indexed(run, [d.doc_id for d in docs], timeout_s))
        print(f"published in {publish_s:.1f} s, indexed {index_s:.0f} s later")
        running = asyncio.run(running_backend(run))
        print(f"embedder backend: {running}")
        results = asyncio.run(evaluate(run, queries, qrels))
    return {"backend": running, "results": results, "publish_s": publish_s, "index_s": index_s}


def compare(runs: list[dict[str, Any]], torch_ndcg: float | None) -> dict[str, Any]:
    """Each backend's dense nDCG@10 against torch fp32's: from a torch run in
    the same invocation when there is one, else from --torch-ndcg."""
    baseline = next(
        (r["results"]["dense (MiniLM)"]["ndcg@10"] for r in runs if r["backend"] == "torch"),
        torch_ndcg,
    )
    verdicts: dict[str, Any] = {}
    if baseline is None:
        return verdicts
    for run in runs:
        if run["backend"] == "torch":
            continue
        dense = run["results"]["dense (MiniLM)"]["ndcg@10"]
        delta = dense - baseline
        within = abs(delta) <= 0.005
        verdicts[run["backend"]] = {
            "dense": dense,
            "torch": baseline,
            "delta": delta,
            "within": within,
        }
        print(
            f"backend {run['backend']}: dense nDCG@10 {dense:.4f}, torch fp32 {baseline:.4f}, "
            f"difference {delta:+.4f} ({'within' if within else 'NOT within'} 0.005)"
        )
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, default=scifact.DATASET)
    parser.add_argument(
        "--queries", type=int, default=0, help="evaluate only the first N judged queries"
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for indexing")
    parser.add_argument(
        "--backend",
        type=backends,
        default=None,
        help="the embedder's inference backend, or a comma list run one after the other "
        "(default: DOCSTREAM_EMBED_BACKEND, else auto)",
    )
    parser.add_argument(
        "--torch-ndcg", type=float, default=None, help="torch fp32's dense nDCG@10, to compare"
    )
    args = parser.parse_args()

    docs, queries, qrels = load(args.dataset, args.queries or None)
    print(f"{args.dataset.name}: {len(docs)} documents, {len(queries)} judged queries")
    runs = [measure(b, docs, queries, qrels, args.timeout) for b in args.backend or [None]]
    for run in runs:
        print(f"\n{run['backend']}:\n| mode | nDCG@10 | Recall@100 | p50 query ms |")
        print("|---|---|---|---|")
        for name, row in run["results"].items():
            print(
                f"| {name} | {row['ndcg@10']:.4f} | {row['recall@100']:.3f} | {row['p50_ms']:.0f} |"
            )
    print(f"\n({REFERENCE})")
    verdicts = compare(runs, args.torch_ndcg)
    write_record(
        "quality",
        {
            "dataset": args.dataset.name,
            "documents": len(docs),
            "queries": len(queries),
            "results": runs[-1]["results"],
            "publish_s": runs[-1]["publish_s"],
            "index_s": runs[-1]["index_s"],
            "backend": runs[-1]["backend"],
            "runs": runs,
            "against_torch": verdicts,
        },
    )


if __name__ == "__main__":
    main()
