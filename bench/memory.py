"""Peak memory of the worker (which also serves the API and holds the embedded
Qdrant: one process) at >= 100k chunks, next to the same worker idle and to a
bare Python process holding only the model.

1. Build --chunks synthetic EmbeddedChunk events (`bench/rebuild_events.py`:
   SciFact abstracts cut into ~60-word chunks, random unit vectors: embedding
   100k chunks on a CPU would take hours).
2. Start the stack (if nothing answers) and one worker on fresh topics and a
   fresh Qdrant folder (`bench.pipeline`); after --settle seconds read its
   RSS: the idle baseline.
3. Publish the events straight to `chunks.embedded`; the worker's two sinks
   write them to Qdrant (embedded) and Neo4j. Sample the worker's VmRSS every
   0.5 s until both sinks have written every chunk, then send --queries hybrid
   queries through its API, and read VmHWM (the kernel's peak RSS).
4. Baseline: a bare `python` that loads the same embedder class and embeds one
   text, its VmRSS and VmHWM.

`docstream api` as a process of its own needs a Qdrant server (QDRANT_URL);
none runs here, so the API alone is not measured: in this deployment the API
lives in the worker, and its memory is in the worker's figures.

    .venv/bin/python -m bench.memory                       # 100,000 chunks
    .venv/bin/python -m bench.memory --chunks 10000 --queries 20

The JSON record goes to bench/results/memory.json (or --json-out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench import scifact
from bench.corpora import (
    SINKS,
    cleanup,
    load_average,
    memory_mib,
    metrics_text,
    record_header,
    wait_written,
    worker_pid,
    written,
)
from bench.pipeline import REPO, RunningPipeline, pipeline, write_record
from bench.rebuild_events import publish, synthetic_events
from schemas.codec import Codecs

BARE = """
import json
from streams.embedding.model import SentenceTransformerEmbedder
from core.settings import EmbedderSettings
SentenceTransformerEmbedder(EmbedderSettings()).embed(["a probe"])
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({k: int(status[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM")}))
"""


class Sampler(threading.Thread):
    """VmRSS of a process every `every` seconds: the peak and a coarse timeline."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peak = 0.0
        self.timeline: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.started_at = time.monotonic()

    def run(self) -> None:
        while not self.stop.is_set():
            rss = memory_mib(self.pid)["VmRSS"]
            self.peak = max(self.peak, rss)
            at = round(time.monotonic() - self.started_at, 1)
            if not self.timeline or at - self.timeline[-1][0] >= 5:
                self.timeline.append((at, round(rss, 1)))
            self.stop.wait(self.every)


def bare_model() -> dict[str, float]:
    """RSS of a bare Python process that loaded the embedder and embedded one text."""
    out = subprocess.run(
        [sys.executable, "-c", BARE], cwd=REPO, capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


async def queries(base_url: str, count: int) -> int:
    """`count` hybrid queries (SciFact's), one at a time, through the worker's API."""
    lines = (
        scifact.path(scifact.DATASET, "queries.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()[:count]
    )
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        for line in lines:
            response = await client.get("/query", params={"q": json.loads(line)["text"], "k": 10})
            response.raise_for_status()
    return len(lines)


def du_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def load(run: RunningPipeline, args: argparse.Namespace, codecs: Codecs) -> dict[str, Any]:
    pid = worker_pid()
    time.sleep(args.settle)
    idle = memory_mib(pid)
    print(f"worker {pid} idle: {idle}", flush=True)
    messages, docs = synthetic_events(args.chunks, codecs, args.seed)
    before = written(metrics_text(run.base_url))
    sampler = Sampler(pid)
    sampler.start()
    publish_s = publish(run.settings, messages)
    print(f"{len(messages)} chunks ({docs} documents) published in {publish_s:.1f} s", flush=True)
    expected = {s: before[s] + len(messages) for s in SINKS}
    index_s = asyncio.run(wait_written([run.base_url], expected, args.timeout))
    loaded = memory_mib(pid)
    asked = asyncio.run(queries(run.base_url, args.queries))
    queried = memory_mib(pid)
    sampler.stop.set()
    sampler.join()
    return {
        "chunks": len(messages),
        "documents": docs,
        "publish_s": round(publish_s, 1),
        "index_s": round(index_s, 1),
        "idle_mib": idle,
        "after_load_mib": loaded,
        "queries": asked,
        "after_queries_mib": queried,
        "sampled_peak_rss_mib": round(sampler.peak, 1),
        "timeline_s_mib": sampler.timeline,
        "qdrant_folder_mib": round(du_mib(run.settings.qdrant.path), 1),
    }


def report(row: dict[str, Any]) -> None:
    idle, peak = row["idle_mib"], row["after_queries_mib"]["VmHWM"]
    lines = [
        ("bare python + embedder (baseline)", row["bare_model_mib"]),
        ("worker idle after start-up (baseline)", idle),
        (f"worker, {row['chunks']} chunks indexed", row["after_load_mib"]),
        (f"worker, then {row['queries']} queries", row["after_queries_mib"]),
    ]
    print(f"\n{'RSS in MiB':40} {'now (VmRSS)':>12} {'peak (VmHWM)':>13}")
    for label, mib in lines:
        print(f"  {label:38} {mib['VmRSS']:12.0f} {mib['VmHWM']:13.0f}")
    grown = peak - idle["VmRSS"]
    print(
        f"  peak over idle: +{grown:.0f} MiB ({grown * 1024 / row['chunks']:.1f} KiB per chunk); "
        f"sampled peak VmRSS {row['sampled_peak_rss_mib']:.0f}; Qdrant folder on disk "
        f"{row['qdrant_folder_mib']:.0f} MiB; indexed in {row['index_s']:.0f} s\n"
        "  the API alone (docstream api) needs QDRANT_URL, a Qdrant server: not measured",
        flush=True,
    )


def summary(record: dict[str, Any]) -> list[list[str]]:
    row = record["result"]
    idle, bare = row["idle_mib"]["VmRSS"], row["bare_model_mib"]["VmRSS"]
    return [
        [
            f"worker peak RSS MiB at {row['chunks']} chunks",
            f"{row['after_queries_mib']['VmHWM']:.0f}",
            f"idle worker {idle:.0f}, bare model {bare:.0f}",
            "-",
        ]
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200, help="hybrid queries after the load")
    parser.add_argument("--settle", type=float, default=10.0, help="idle seconds before reading")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for indexing")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)

    started_load = load_average()
    codecs = Codecs.create()
    with pipeline("memory", cleanup=cleanup) as run:
        row = load(run, args, codecs)
        engine = run.settings.qdrant.engine
    row["bare_model_mib"] = bare_model()
    report(row)
    write_record(
        "memory",
        {
            **record_header("memory", started_load, argv),
            "qdrant_engine": engine,
            "result": row,
            "api_alone": "not measured: docstream api needs QDRANT_URL (a Qdrant server)",
        },
        args.json_out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
