"""Freshness: from publishing a document to finding it with a query, at a steady
rate, next to the worker's own freshness histogram in the same run.

1. Start the stack (if nothing answers) and one worker on fresh topics
   (`bench.pipeline`).
2. The sustained maximum: publish a burst of --burst short documents and time
   until both sinks hold them all (or take --max-rate, docs/s).
3. For each phase (half that rate, then the maximum), for --duration seconds a
   publisher thread sends one document at a time at the rate (`DocumentPublisher`,
   the CLI's publisher), each a SciFact sentence with a unique token in front:
   one chunk per document. occurred_at is stamped as it is sent. A poller sends
   `GET /query?mode=lexical&expand=0` (JSON) every --poll seconds with every
   token still unseen (up to 80 a query; a token occurs in one document only,
   so every hit is a find) and stamps each document when the answer naming it
   arrives. Freshness = that stamp - the send stamp, so it includes the
   publisher's linger (5 ms) and up to one poll interval.
4. Print p50/p95/p99 of it next to `docstream_freshness_seconds` (occurred_at
   to the sink's write, per sink, interpolated within the histogram's buckets
   like PromQL's histogram_quantile) over the same phase. Target at half rate:
   p50 <= 300 ms, p99 <= 1.5 s.

    .venv/bin/python -m bench.freshness                          # 300 s per phase
    .venv/bin/python -m bench.freshness --duration 30 --burst 200
    .venv/bin/python -m bench.freshness --max-rate 40 --phases half

The JSON record goes to bench/results/freshness.json (or --json-out).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.corpora import (
    SINKS,
    cleanup,
    load_average,
    metrics_text,
    record_header,
    sentences,
    wait_written,
)
from bench.corpora import written as written_counts
from bench.pipeline import RunningPipeline, pipeline, write_record
from bench.quality import publish
from bench.query import percentiles
from core.correlation import mint_correlation_id, mint_traceparent
from ops.publishing.publisher import DocumentPublisher
from schemas.codec import codec_for
from schemas.events import DocumentEvent

TARGET_P50_MS = 300.0
TARGET_P99_MS = 1500.0
PER_QUERY = 80  # tokens per poll query (k <= 100, q <= 2000 characters)


class ShortDocuments:
    """One-chunk documents, each a SciFact sentence led by a token no other has."""

    def __init__(self, seed: int) -> None:
        self.pool = [s for s in sentences() if len(s.split()) <= 40]
        self.rng = random.Random(seed)
        self.tag = uuid.uuid4().hex[:6]
        self.made = 0

    def next(self) -> DocumentEvent:
        self.made += 1
        token = f"fz{self.tag}n{self.made:07d}"
        now = int(time.time() * 1000)
        text = f"{token} {self.rng.choice(self.pool)}"
        return DocumentEvent(doc_id=token, version=1, occurred_at=now, text=text, title="")


def paced(
    docs: ShortDocuments, rate: float, duration: float, sent: dict[str, float]
) -> Iterator[DocumentEvent]:
    """Documents at `rate` per second for `duration` seconds, stamped as they go."""
    started = time.monotonic()
    for i in range(int(rate * duration)):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        doc = docs.next()
        sent[doc.doc_id] = time.time()
        yield doc


async def poll(
    base_url: str,
    sent: dict[str, float],
    publishing: threading.Thread,
    poll_s: float,
    drain_s: float,
) -> dict[str, float]:
    """Until every sent token is found (or `drain_s` after the publisher ends)."""
    found: dict[str, float] = {}
    deadline = float("inf")
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        while time.monotonic() < deadline:
            if not publishing.is_alive() and deadline == float("inf"):
                deadline = time.monotonic() + drain_s
            pending = [t for t in list(sent) if t not in found]
            if not pending and not publishing.is_alive():
                break
            for start in range(0, len(pending), PER_QUERY):
                group = pending[start : start + PER_QUERY]
                params: dict[str, str | int] = {
                    "q": " ".join(group),
                    "mode": "lexical",
                    "k": len(group),
                    "expand": 0,
                }
                response = await client.get("/query", params=params)
                response.raise_for_status()
                now = time.time()
                for hit in response.json()["hits"]:
                    found.setdefault(hit["doc_id"], now)
            await asyncio.sleep(poll_s)
    return found


def buckets(text: str, sink: str) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of the worker's freshness histogram for a sink."""
    out = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "docstream_freshness_seconds_bucket"
                and sample.labels["sink"] == sink
            ):
                out.append((float(sample.labels["le"]), sample.value))
    return sorted(out)


def quantile(
    q: float, before: list[tuple[float, float]], after: list[tuple[float, float]]
) -> float | None:
    """histogram_quantile over the difference of two scrapes, in ms."""
    was = dict(before)
    counts = [(le, n - was.get(le, 0.0)) for le, n in after]
    total = counts[-1][1] if counts else 0.0
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for le, n in counts:
        if n >= rank:
            if le == float("inf"):
                return lower * 1000
            return (lower + (le - lower) * (rank - below) / max(n - below, 1e-9)) * 1000
        lower, below = le, n
    return None


def phase(
    run: RunningPipeline, docs: ShortDocuments, rate: float, args: argparse.Namespace
) -> dict[str, Any]:
    before = metrics_text(run.base_url)
    sent: dict[str, float] = {}
    publisher = DocumentPublisher(
        run.settings.kafka, codec_for("DocumentEvent"), mint_correlation_id(), mint_traceparent()
    )
    thread = threading.Thread(
        target=publisher.publish, args=(paced(docs, rate, args.duration, sent),), daemon=True
    )
    started = time.monotonic()
    thread.start()
    found = asyncio.run(poll(run.base_url, sent, thread, args.poll, args.drain))
    published_s = time.monotonic() - started
    after = metrics_text(run.base_url)
    latencies = [(found[t] - at) * 1000 for t, at in sent.items() if t in found]
    worker = {
        sink: {
            f"p{int(q * 100)}": quantile(q, buckets(before, sink), buckets(after, sink))
            for q in (0.5, 0.95, 0.99)
        }
        for sink in SINKS
    }
    spread = max(sent.values()) - min(sent.values()) if len(sent) > 1 else 0.0
    return {
        "rate_docs_per_s": rate,
        "achieved_docs_per_s": round((len(sent) - 1) / spread, 2) if spread else 0.0,
        "sent": len(sent),
        "found": len(found),
        "missing": len(sent) - len(set(sent) & set(found)),
        "publish_failed": len(publisher.report.failed),
        "wall_s": round(published_s, 1),
        "freshness_ms": percentiles(latencies),
        "worker_histogram_ms": worker,
    }


def max_rate(run: RunningPipeline, docs: ShortDocuments, burst: int, timeout_s: float) -> float:
    """Short documents per second through both sinks, from a burst of `burst`."""
    before = written_counts(metrics_text(run.base_url))
    batch = [docs.next() for _ in range(burst)]
    started = time.monotonic()
    publish(run, batch)
    asyncio.run(wait_written([run.base_url], {s: before[s] + burst for s in SINKS}, timeout_s))
    return burst / (time.monotonic() - started)


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def report(name: str, row: dict[str, Any]) -> None:
    mine, worker = row["freshness_ms"], row["worker_histogram_ms"]
    print(
        f"\n{name}: {row['rate_docs_per_s']:.1f} docs/s asked, {row['achieved_docs_per_s']:.1f} "
        f"sent, {row['wall_s']:.0f} s with the drain; "
        f"sent {row['sent']}, found {row['found']}, missing {row['missing']}\n"
        f"  produce -> queryable (lexical query):  p50 {fmt(mine.get('p50'))} ms  "
        f"p95 {fmt(mine.get('p95'))} ms  p99 {fmt(mine.get('p99'))} ms",
        flush=True,
    )
    for sink, q in worker.items():
        print(
            f"  worker histogram, {sink:11} (occurred_at -> written): p50 {fmt(q['p50'])} ms  "
            f"p95 {fmt(q['p95'])} ms  p99 {fmt(q['p99'])} ms"
        )


def summary(record: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, row in record["phases"].items():
        mine, worker = row["freshness_ms"], row["worker_histogram_ms"]["qdrant-sink"]
        target = (
            f"p50 <= {TARGET_P50_MS:.0f}, p99 <= {TARGET_P99_MS:.0f}" if name == "half" else "-"
        )
        rows.append(
            [
                f"freshness ms at {name} rate ({row['rate_docs_per_s']:.1f} docs/s)",
                f"p50 {fmt(mine.get('p50'))} p99 {fmt(mine.get('p99'))}",
                f"worker histogram p50 {fmt(worker['p50'])} p99 {fmt(worker['p99'])}",
                target,
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=300.0, help="seconds per phase")
    parser.add_argument("--max-rate", type=float, default=0.0, help="docs/s; 0: measure it")
    parser.add_argument("--burst", type=int, default=500, help="documents to measure the max")
    parser.add_argument("--phases", default="half,max", help="comma list of half, max")
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between poll rounds")
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to wait at the end")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)

    started_load = load_average()
    docs = ShortDocuments(args.seed)
    phases: dict[str, dict[str, Any]] = {}
    with pipeline("freshness", cleanup=cleanup) as run:
        measured = args.max_rate <= 0
        top = max_rate(run, docs, args.burst, 600) if measured else args.max_rate
        how = f"measured: a burst of {args.burst}" if measured else "given (--max-rate)"
        print(
            f"maximum rate {top:.1f} docs/s ({how}); documents: one SciFact sentence "
            "each plus a unique token, one chunk",
            flush=True,
        )
        for name in args.phases.split(","):
            rate = top / 2 if name == "half" else top
            print(f"phase {name}: {rate:.1f} docs/s for {args.duration:.0f} s", flush=True)
            phases[name] = phase(run, docs, rate, args)
            report(name, phases[name])
    write_record(
        "freshness",
        {
            **record_header("freshness", started_load, argv),
            "corpus": "SciFact sentences (<= 40 words) with a unique token: one chunk each",
            "max_rate_docs_per_s": top,
            "max_rate_source": how,
            "poll_s": args.poll,
            "phases": phases,
            "target_ms": {"p50": TARGET_P50_MS, "p99": TARGET_P99_MS},
        },
        args.json_out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
