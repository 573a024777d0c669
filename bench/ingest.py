"""Ingest throughput through the real pipeline, next to the raw embedder on the
same chunk texts in the same run.

1. Start the stack (if nothing answers) and one worker on fresh topics and a
   fresh Qdrant folder (`bench.pipeline`).
2. For each corpus: publish its documents to `documents` and time from the
   first publish until both sinks have written every chunk (the worker's
   /metrics, polled every second). Chunks/s = chunks / that time. Meanwhile
   read the CPU seconds of the worker, Kafka, Neo4j, this process and the
   machine from /proc (`bench/measure.py`), and the seconds each stage spent in
   its handler from the worker's own histogram (where the worker's time went).
3. Stop the worker (so nothing competes), then embed the same chunk texts (the
   worker's chunker, the worker's settings) with the same class,
   `streams.embedding.model.SentenceTransformerEmbedder`, in this process, in batches of
   the worker's batch size (DOCSTREAM_EMBED_BATCH, 64), after a warm-up.
4. Print pipeline chunks/s, raw chunks/s and their ratio (target >= 0.9)
   beside the embedder's busy share of the span (its handler's seconds),
   and the Neo4j server's CPU per chunk over the pipeline span.
5. The sinks' own cost per chunk on the live path (`bench.sinks`: a graph of
   its own seeded to 10,000 and then 100,000 chunks without the embedder, the
   Neo4j write before issue 18 next to the current one, and the Qdrant sink),
   printed in the summary; --no-sink-cost leaves it out, --sink-sizes and
   --sink-chunks size it.

Corpora: `scifact` (SciFact abstracts, one document each: 1 to 3 chunks of up
to 200 tokens) and `synthetic` (4 to 8 paragraphs of SciFact sentences drawn
with --seed: about 5 chunks each).

    .venv/bin/python -m bench.ingest                              # both corpora, default sizes
    .venv/bin/python -m bench.ingest --corpus scifact --docs 100  # a quick check
    .venv/bin/python -m bench.ingest --corpus synthetic --docs 200 --seed 3
    .venv/bin/python -m bench.ingest --corpus scifact --docs 100 --sink-sizes 10000
    .venv/bin/python -m bench.ingest --corpus scifact --docs 800 --engines edge server

--engines runs the pipeline once per Qdrant engine, one after the other on the
same stack and corpus, and holds each to the same raw-embedder run: the
embedded Qdrant Edge (the default) and a Qdrant server of the run's own, from
QDRANT_BIN (else `qdrant` on PATH), whose CPU is counted beside the others'.

The JSON record goes to bench/results/ingest.json (or --json-out).
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.corpora import (
    SINKS,
    chunk_texts,
    cleanup,
    load_average,
    metrics_text,
    record_header,
    scifact_documents,
    stage_seconds,
    synthetic_documents,
    wait_written,
    worker_pid,
    written,
)
from bench.measure import Span, measured, rate
from bench.pipeline import ENGINES, RunningPipeline, pipeline, running_backend, write_record
from bench.quality import publish
from bench.sinks import measure as measure_sinks
from bench.sinks import parser as sinks_parser
from bench.sinks import print_summary as print_sink_summary
from bench.sinks import summary as sink_summary
from core.settings import Settings
from schemas.events import DocumentEvent
from streams.embedding.model import SentenceTransformerEmbedder
from tools.stack.local import LocalStack

# Sized for about 6 minutes in all on 2 CPU cores (~25 chunks/s of 200 tokens).
DEFAULT_DOCS = {"scifact": 800, "synthetic": 120}
TARGET_RATIO = 0.9


@dataclass
class Corpus:
    name: str
    docs: list[DocumentEvent]
    texts: list[str]


def corpora(args: argparse.Namespace, settings: Settings) -> list[Corpus]:
    names = ["scifact", "synthetic"] if args.corpus == "both" else [args.corpus]
    out = []
    for name in names:
        count = args.docs or DEFAULT_DOCS[name]
        docs = (
            scifact_documents(count)
            if name == "scifact"
            else synthetic_documents(count, seed=args.seed)
        )
        out.append(Corpus(name, docs, chunk_texts(settings, docs)))
    return out


def ingest(run: RunningPipeline, corpus: Corpus, timeout_s: float) -> dict[str, Any]:
    """Publish the corpus, wait until both sinks hold every chunk; time and CPU."""
    pid = worker_pid()
    pids = run.service_pids
    before_text = metrics_text(run.base_url)
    before = written(before_text)
    expected = {s: before[s] + len(corpus.texts) for s in SINKS}
    with measured({"worker": pid, **pids}) as span:
        publish_s = publish(run, corpus.docs)
        asyncio.run(wait_written([run.base_url], expected, timeout_s))
    after_text = metrics_text(run.base_url)
    stages = {
        k: round(v - stage_seconds(before_text)[k], 2) for k, v in stage_seconds(after_text).items()
    }
    extra = {s: written(after_text)[s] - expected[s] for s in SINKS}
    return {
        "documents": len(corpus.docs),
        "chunks": len(corpus.texts),
        "mean_words_per_chunk": round(
            sum(len(t.split()) for t in corpus.texts) / max(1, len(corpus.texts)), 1
        ),
        "publish_s": round(publish_s, 2),
        "chunks_per_s": rate(len(corpus.texts), span.wall),
        # Neo4j's CPU over the span, housekeeping and any other client included.
        "neo4j_ms_per_chunk": round(span.cpu.get("neo4j", 0.0) * 1000 / len(corpus.texts), 2),
        **span.as_dict(),
        "stage_handler_s": stages,
        "written_beyond_expected": extra,
    }


def row_name(corpus: str, engine: str) -> str:
    """A corpus's row; "scifact on server" beside plain "scifact" (Qdrant Edge)."""
    return corpus if engine == "edge" else f"{corpus} on {engine}"


def raw_embed(embedder: SentenceTransformerEmbedder, texts: list[str]) -> Span:
    """The same texts through the same embedder class in this process, batch by batch."""
    embedder.embed(texts[:8])  # warm-up, as the worker's load-time probe
    batch = embedder.batch_size
    with measured({}) as span:
        for start in range(0, len(texts), batch):
            embedder.embed(texts[start : start + batch])
    return span


def report(name: str, row: dict[str, Any]) -> None:
    ratio = row["ratio"]
    verdict = "meets" if ratio >= TARGET_RATIO else "below"
    print(
        f"\n{name}: {row['documents']} documents -> {row['chunks']} chunks "
        f"({row['mean_words_per_chunk']:.0f} words each on average)\n"
        f"  pipeline (first publish -> both sinks hold every chunk): {row['wall_s']:.1f} s, "
        f"{row['chunks_per_s']:.1f} chunks/s\n"
        f"  raw embedder (same texts, same class, worker stopped):   "
        f"{row['raw']['wall_s']:.1f} s, {row['raw']['chunks_per_s']:.1f} chunks/s\n"
        f"  embedder backend: worker {row['backend']['worker']}, raw {row['backend']['raw']}\n"
        f"  pipeline / raw = {ratio:.2f}  (target >= {TARGET_RATIO}: {verdict}); "
        f"embedder busy {busy_share(row):.2f} of the span (its handler's time; the rest "
        "it waited: for input, for acknowledgements, for the sinks)\n"
        f"  CPU s during the pipeline span: {row['cpu_s']}\n"
        f"  Neo4j server CPU per chunk over the span: {row['neo4j_ms_per_chunk']:.2f} ms\n"
        f"  stage handler wall s: {row['stage_handler_s']}",
        flush=True,
    )


def busy_share(row: dict[str, Any]) -> float:
    """The share of the pipeline's span the embedder's handler ran (the worker's
    own histogram): 1.0 would be an embedder that never waits."""
    return float(row["stage_handler_s"].get("embedder", 0.0)) / row["wall_s"]


def summary(record: dict[str, Any]) -> list[list[str]]:
    """Rows for bench/all.py: figure, value, baseline, target."""
    rows = [
        [
            f"ingest {name} chunks/s ({row['chunks']} chunks)",
            f"{row['chunks_per_s']:.1f} ({row['ratio']:.2f} of raw)",
            f"raw embedder {row['raw']['chunks_per_s']:.1f}",
            f"ratio >= {TARGET_RATIO}",
        ]
        for name, row in record["corpora"].items()
    ]
    return rows + (sink_summary(record["sinks"]) if record.get("sinks") else [])


def measure_all(
    args: argparse.Namespace, chosen: list[Corpus]
) -> tuple[Settings, dict[str, dict[str, Any]], dict[str, Any] | None]:
    """Ingest each corpus through a worker, the raw embedder on the same texts,
    then (the worker stopped, the stack still up) the sinks' own cost."""
    rows: dict[str, dict[str, Any]] = {}
    backends: dict[str, str] = {}
    for engine in args.engines:
        with pipeline(f"ingest-{engine}", cleanup=cleanup, engine=engine) as run:
            settings = run.settings
            for corpus in chosen:
                print(
                    f"{corpus.name} on {engine}: publishing {len(corpus.docs)} documents",
                    flush=True,
                )
                rows[row_name(corpus.name, engine)] = ingest(run, corpus, args.timeout)
            backends[engine] = asyncio.run(running_backend(run))
    embedder = SentenceTransformerEmbedder(settings.embedder)
    for corpus in chosen:
        span = raw_embed(embedder, corpus.texts)  # once: every engine's row is held to it
        for engine in args.engines:
            name = row_name(corpus.name, engine)
            row = rows[name]
            row["engine"] = engine
            row["raw"] = {"chunks_per_s": rate(len(corpus.texts), span.wall), **span.as_dict()}
            row["backend"] = {"worker": backends[engine], "raw": embedder.backend}
            row["ratio"] = row["chunks_per_s"] / row["raw"]["chunks_per_s"]
            row["embedder_busy_share"] = round(busy_share(row), 3)
            report(name, row)
    sinks = None
    if not args.no_sink_cost:
        sink_args = sinks_parser().parse_args(
            ["--sizes", *map(str, args.sink_sizes), "--chunks", str(args.sink_chunks)]
        )
        sinks = asyncio.run(measure_sinks(sink_args))
        print_sink_summary(sinks)
    return settings, rows, sinks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", choices=("scifact", "synthetic", "both"), default="both")
    parser.add_argument("--docs", type=int, default=0, help=f"documents per corpus {DEFAULT_DOCS}")
    parser.add_argument("--seed", type=int, default=7, help="of the synthetic corpus")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per corpus")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument(
        "--engines",
        nargs="+",
        choices=ENGINES,
        default=["edge"],
        help="the worker's Qdrant, one pipeline each in turn: the embedded Qdrant Edge "
        "and/or a Qdrant server of the run's own (QDRANT_BIN, else `qdrant` on PATH)",
    )
    parser.add_argument(
        "--no-sink-cost", action="store_true", help="leave out the sinks' cost per chunk"
    )
    parser.add_argument("--sink-sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--sink-chunks", type=int, default=2000)
    args = parser.parse_args(argv)

    started_load = load_average()
    # The stack outlives the pipeline's worker: the sinks' cost is measured on
    # its Neo4j after the ingest (bench.sinks reads that process's CPU).
    stack = LocalStack(Settings.from_env())
    started = stack.up(log=True)
    try:
        chosen = corpora(args, Settings.from_env())
        settings, rows, sinks = measure_all(args, chosen)
    finally:
        stack.down(only=started)
    write_record(
        "ingest",
        {
            **record_header("ingest", started_load, argv),
            "partitions": settings.kafka.partitions,
            "embed_batch": settings.embedder.batch_size,
            "corpora": rows,
            "target_ratio": TARGET_RATIO,
            "sinks": sinks,
        },
        args.json_out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
