"""A replay's fill rate next to the raw embedder's, in the same run.

A replay re-chunks and re-embeds every document of `documents` into new
generations of both stores (`ops/jobs/replay.py`). With the model unchanged it
should run at the embedder's pace: everything else it does (reading, chunking,
the bulk writes into empty generations) is small beside embedding on a CPU.

1. Start the stack (if nothing answers) and one worker on fresh topics
   (`bench.pipeline`); publish SciFact abstracts and wait until both sinks hold
   every chunk (the live pipeline, not timed).
2. `POST /admin/replay` with another chunk size (the model unchanged) and
   poll its progress every 0.25 s: the fill is the time from the request to
   the phase leaving `filling`; its chunks are the worker's
   `docstream_rebuild_chunks_total{target="replay"}`. Also timed: request to
   `done` (switch, drain and drop included), and the CPU seconds of the
   worker, Kafka and Neo4j over the replay (`bench/measure.py`).
3. Stop the worker, then embed the replay's own chunk texts (the chunker with
   the replay's settings) with the worker's embedder class in this process, in
   batches of the worker's batch size: the raw rate.
4. Print fill chunks/s, raw chunks/s and their ratio (target >= 0.8).

    .venv/bin/python -m bench.replay                 # 600 abstracts
    .venv/bin/python -m bench.replay --docs 100      # a quick check

The JSON record goes to bench/results/replay.json (or --json-out).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from bench.corpora import (
    SINKS,
    cleanup,
    load_average,
    metrics_text,
    record_header,
    scifact_documents,
    wait_written,
    worker_pid,
    written,
)
from bench.ingest import raw_embed
from bench.measure import measured, rate
from bench.pipeline import RunningPipeline, pipeline, write_record
from bench.quality import publish, sample_value
from core.settings import Settings
from schemas.events import DocumentEvent
from streams.chunker import SentenceChunker
from streams.embedding.model import SentenceTransformerEmbedder

TARGET_RATIO = 0.8
DEFAULT_DOCS = 600  # about 1,000 chunks: a few minutes of embedding on 2 cores
REPLAY_TOKENS, REPLAY_OVERLAP = 128, 16  # re-chunk only: the live default is 200 / 32
KEY = "bench-replay-key"


def replay_chunks(text: str) -> float:
    return sample_value(text, "docstream_rebuild_chunks_total", target="replay")


def index_live(run: RunningPipeline, docs: list[DocumentEvent], timeout_s: float) -> int:
    """Publish and wait until the live sinks hold every chunk; the chunk count."""
    chunker = SentenceChunker.for_model(run.settings.chunker, run.settings.embedder.model)
    chunks = sum(len(chunker.chunk(d.doc_id, d.text)) for d in docs)
    before = written(metrics_text(run.base_url))
    publish(run, docs)
    expected = {s: before[s] + chunks for s in SINKS}
    asyncio.run(wait_written([run.base_url], expected, timeout_s))
    return chunks


def replay(run: RunningPipeline, timeout_s: float) -> dict[str, Any]:
    """Start the replay and follow it to `done`; fill and total seconds, CPU."""
    auth = {"X-API-Key": KEY}
    pids = run.service_pids
    before = replay_chunks(metrics_text(run.base_url))
    fill_s = None
    with (
        httpx.Client(base_url=run.base_url, headers=auth, timeout=30) as client,
        measured({"worker": worker_pid(), **pids}) as span,
    ):
        started = time.monotonic()
        answer = client.post(
            "/admin/replay",
            json={
                "topic": "documents",
                "max_tokens": REPLAY_TOKENS,
                "overlap_tokens": REPLAY_OVERLAP,
            },
        )
        answer.raise_for_status()
        while time.monotonic() - started < timeout_s:
            report = client.get("/admin/replay").json()
            [target] = report["targets"]
            if fill_s is None and target["phase"] not in ("starting", "filling"):
                fill_s = time.monotonic() - started
                filled = replay_chunks(metrics_text(run.base_url)) - before
            if not report["running"]:
                break
            time.sleep(0.25)
        else:
            raise RuntimeError(f"the replay did not end in {timeout_s:.0f} s")
    if target["phase"] != "done" or fill_s is None:
        raise RuntimeError(f"the replay ended {target['phase']}: {target['error']}")
    return {
        "fill_s": round(fill_s, 2),
        "fill_chunks": int(filled),
        "fill_chunks_per_s": rate(int(filled), fill_s),
        "to_done_s": round(span.wall, 2),
        **{k: v for k, v in span.as_dict().items() if k != "wall_s"},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=DEFAULT_DOCS, help="SciFact abstracts")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per phase")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)

    started_load = load_average()
    docs = scifact_documents(args.docs)
    env = {"DOCSTREAM_API_KEYS": KEY}
    with pipeline("replay", extra_env=env, cleanup=cleanup) as run:
        settings = run.settings
        print(f"publishing {len(docs)} abstracts and waiting for the live index", flush=True)
        live_chunks = index_live(run, docs, args.timeout)
        print(f"replaying into max_tokens={REPLAY_TOKENS}", flush=True)
        row = replay(run, args.timeout)
    texts = replay_texts(settings, docs)
    span = raw_embed(SentenceTransformerEmbedder(settings.embedder), texts)
    raw = {"chunks": len(texts), "chunks_per_s": rate(len(texts), span.wall), **span.as_dict()}
    ratio = row["fill_chunks_per_s"] / raw["chunks_per_s"]
    verdict = "meets" if ratio >= TARGET_RATIO else "below"
    print(
        f"\nreplay of {len(docs)} abstracts ({live_chunks} live chunks -> "
        f"{row['fill_chunks']} at max_tokens={REPLAY_TOKENS}), model unchanged\n"
        f"  fill (request -> switch): {row['fill_s']:.1f} s, "
        f"{row['fill_chunks_per_s']:.1f} chunks/s; to done {row['to_done_s']:.1f} s\n"
        f"  raw embedder (the replay's texts, same class, worker stopped): "
        f"{span.wall:.1f} s, {raw['chunks_per_s']:.1f} chunks/s\n"
        f"  fill / raw = {ratio:.2f}  (target >= {TARGET_RATIO}: {verdict})\n"
        f"  CPU s during the replay: {row['cpu_s']}",
        flush=True,
    )
    write_record(
        "replay",
        {
            **record_header("replay", started_load, argv),
            "documents": len(docs),
            "live_chunks": live_chunks,
            "replay": row,
            "raw": raw,
            "ratio": ratio,
            "target_ratio": TARGET_RATIO,
        },
        args.json_out,
    )
    return 0


def replay_texts(settings: Settings, docs: list[DocumentEvent]) -> list[str]:
    """The texts the replay embeds: the chunker with the replay's settings."""
    chunking = replace(settings.chunker, max_tokens=REPLAY_TOKENS, overlap_tokens=REPLAY_OVERLAP)
    chunker = SentenceChunker.for_model(chunking, settings.embedder.model)
    return [c.text for d in docs for c in chunker.chunk(d.doc_id, d.text)]


def summary(record: dict[str, Any]) -> list[list[str]]:
    """Rows for bench/all.py: figure, value, baseline, target."""
    return [
        [
            f"replay fill chunks/s ({record['replay']['fill_chunks']} chunks, model unchanged)",
            f"{record['replay']['fill_chunks_per_s']:.1f} ({record['ratio']:.2f} of raw)",
            f"raw embedder {record['raw']['chunks_per_s']:.1f}",
            f"ratio >= {TARGET_RATIO}",
        ]
    ]


if __name__ == "__main__":
    raise SystemExit(main())
