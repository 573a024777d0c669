"""Scale-out: two workers in one consumer group on topics of 4 partitions,
next to one worker in the same run, and a worker leaving without loss.

1. Start the stack (if nothing answers) and worker A on fresh topics of
   --partitions (DOCSTREAM_PARTITIONS=4) with the API and every stage
   (`bench.pipeline`). Alone, A indexes --docs SciFact abstracts: chunks/s from
   the first publish until both sinks hold every chunk.
2. Start worker B in the same group, `docstream worker --no-api` with
   DOCSTREAM_WORKER_STAGES=chunker,embedder,neo4j-sink (the embedded Qdrant
   admits one process, so A alone writes Qdrant); B serves /metrics and /health
   on a port of its own. Print how the broker split each group's partitions
   between the members, then index --docs more abstracts with both: chunks/s,
   each sink's count summed over A and B.
3. Handover: publish --docs more, SIGTERM B once a third of their chunks are
   embedded, and wait until A alone finishes. Shown by counts: each group's
   committed offsets reach the end of its topic (lag 0, from the broker), every
   document of the three batches is `indexed` by A's `GET /documents/{id}`
   (both stores hold exactly its chunks), and the split after B left.

On 2 CPU cores two embedding workers share the same cores, so expect little
or no gain there; the figure is printed as measured.

    .venv/bin/python -m bench.scaleout                      # 300 documents per phase
    .venv/bin/python -m bench.scaleout --docs 40            # a quick check

The JSON record goes to bench/results/scaleout.json (or --json-out).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.corpora import (
    SINKS,
    chunk_texts,
    cleanup,
    load_average,
    metrics_text,
    record_header,
    scifact_documents,
    wait_written,
    written,
)
from bench.pipeline import REPO, RunningPipeline, pipeline, wait_ready, write_record
from bench.quality import publish, sample_value
from core.kafka.admin import admin_client
from core.kafka.offsets import Offsets
from core.settings import Settings
from schemas.events import DocumentEvent
from tools.stack.ports import free_port

B_STAGES = "chunker,embedder,neo4j-sink"
STAGE_GROUPS = ("embedder", "qdrant-sink", "neo4j-sink")


def start_b(run: RunningPipeline) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**run.env, "DOCSTREAM_API_PORT": str(port), "DOCSTREAM_WORKER_STAGES": B_STAGES}
    log_path = run.log_path.with_name("worker-b.log")
    with log_path.open("ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", "worker", "--no-api"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, worker, log_path)
    return worker, url


def stop(worker: subprocess.Popen[bytes]) -> float:
    """SIGTERM, and the seconds until the worker exited."""
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=90)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
    return time.monotonic() - started


def groups(settings: Settings) -> dict[str, str]:
    """Consumer group -> the topic it reads (Faust's chunker group is the app id)."""
    topics = settings.kafka.topics
    group = settings.kafka.group_id
    out = {group: topics.documents, f"{group}.embedder": topics.chunks}
    out.update({f"{group}.{sink}": topics.chunks_embedded for sink in SINKS})
    return out


def assignment(settings: Settings) -> dict[str, list[int]]:
    """Per group, how many partitions of its topic each member holds (from the broker)."""
    admin = admin_client(settings.kafka)
    wanted = groups(settings)
    out: dict[str, list[int]] = {}
    for name, future in admin.describe_consumer_groups(list(wanted), request_timeout=30).items():
        try:
            members = future.result(timeout=30).members
        except Exception as exc:  # a group the broker cannot describe: say so, go on
            print(f"  {name}: not described ({exc})", file=sys.stderr)
            continue
        out[name.removeprefix(settings.kafka.group_id).lstrip(".") or "chunker"] = sorted(
            (
                sum(tp.topic == wanted[name] for tp in m.assignment.topic_partitions)
                for m in members
                if m.assignment is not None
            ),
            reverse=True,
        )
    return out


def lag(settings: Settings) -> dict[str, int]:
    """Per group: end offsets of its topic minus its committed offsets."""
    offsets = Offsets(settings.kafka, timeout_s=30)
    wanted = groups(settings)
    bounds = offsets.bounds(set(wanted.values()))
    out = {}
    for name, topic in wanted.items():
        ends = {p: end for p, (_, end) in bounds.get(topic, {}).items()}
        committed = offsets.committed(name, topic, ends)
        out[name.removeprefix(settings.kafka.group_id).lstrip(".") or "chunker"] = sum(
            ends[p] - committed.get(p, 0) for p in ends
        )
    return out


def throughput(
    run: RunningPipeline, urls: list[str], docs: list[DocumentEvent], timeout_s: float
) -> dict[str, Any]:
    """Publish, wait until both sinks (summed over `urls`) hold every chunk."""
    chunks = len(chunk_texts(run.settings, docs))
    before = [written(metrics_text(u)) for u in urls]
    expected = {s: sum(b[s] for b in before) + chunks for s in SINKS}
    started = time.monotonic()
    publish(run, docs)
    asyncio.run(wait_written(urls, expected, timeout_s))
    wall = time.monotonic() - started
    return {
        "documents": len(docs),
        "chunks": chunks,
        "wall_s": round(wall, 1),
        "chunks_per_s": chunks / wall,
    }


def embedded(urls: list[str]) -> float:
    """Chunks embedded so far, summed over the workers that still answer."""
    total = 0.0
    for url in urls:
        try:
            text = metrics_text(url)
        except httpx.HTTPError:
            continue
        total += sample_value(text, "docstream_events_total", stage="embedder", outcome="ok")
    return total


def handover(
    run: RunningPipeline, b: subprocess.Popen[bytes], b_url: str, docs: list[DocumentEvent]
) -> dict[str, Any]:
    """Publish, SIGTERM B once a third of the chunks are embedded, let A finish."""
    chunks = len(chunk_texts(run.settings, docs))
    urls = [run.base_url, b_url]
    start = embedded(urls)
    publish(run, docs)
    while embedded(urls) - start < chunks / 3 and b.poll() is None:
        time.sleep(0.5)
    at = embedded(urls) - start
    print(f"  SIGTERM to worker B after {at:.0f} of {chunks} chunks embedded", flush=True)
    return {
        "documents": len(docs),
        "chunks": chunks,
        "embedded_at_sigterm": at,
        "b_exit_s": round(stop(b), 1),
    }


async def statuses(base_url: str, doc_ids: list[str], timeout_s: float) -> dict[str, int]:
    """Ask A for each document's status until all are indexed (or time is up)."""
    pending, seen = list(doc_ids), {}
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        while pending and time.monotonic() < deadline:
            for doc_id in pending:
                response = await client.get(f"/documents/{doc_id}")
                seen[doc_id] = response.json().get("status", str(response.status_code))
            pending = [d for d in pending if seen[d] != "indexed"]
            if pending:
                await asyncio.sleep(2)
    counts: dict[str, int] = {}
    for state in seen.values():
        counts[state] = counts.get(state, 0) + 1
    return counts


def measure(run: RunningPipeline, args: argparse.Namespace) -> dict[str, Any]:
    docs = scifact_documents(3 * args.docs)
    batches = [docs[i * args.docs : (i + 1) * args.docs] for i in range(3)]
    record: dict[str, Any] = {"assignment_one": assignment(run.settings)}
    print(f"one worker, partitions per member: {record['assignment_one']}", flush=True)
    record["one"] = throughput(run, [run.base_url], batches[0], args.timeout)
    print(f"one worker: {record['one']}", flush=True)
    b, b_url = start_b(run)
    try:
        time.sleep(args.settle)  # the rebalance after B joined
        record["assignment_two"] = assignment(run.settings)
        print(f"two workers, partitions per member: {record['assignment_two']}", flush=True)
        record["two"] = throughput(run, [run.base_url, b_url], batches[1], args.timeout)
        print(f"two workers: {record['two']}", flush=True)
        record["handover"] = handover(run, b, b_url, batches[2])
    finally:
        if b.poll() is None:
            stop(b)
    started = time.monotonic()
    record["statuses"] = asyncio.run(statuses(run.base_url, [d.doc_id for d in docs], args.timeout))
    record["all_indexed_after_b_left_s"] = round(time.monotonic() - started, 1)
    record["lag_after"] = lag(run.settings)
    for _ in range(15):  # Faust commits the chunker's offsets every few seconds
        if not any(record["lag_after"].values()):
            break
        time.sleep(2)
        record["lag_after"] = lag(run.settings)
    record["assignment_after"] = assignment(run.settings)
    return record


def report(record: dict[str, Any]) -> None:
    one, two, gone = record["one"], record["two"], record["handover"]
    print(
        f"\npartitions per member (broker): one worker   {record['assignment_one']}\n"
        f"                                two workers  {record['assignment_two']}\n"
        f"                                after B left {record['assignment_after']}",
    )
    for name, row in (("one worker (baseline)", one), ("two workers", two)):
        print(
            f"{name:22} {row['chunks']} chunks in {row['wall_s']:.0f} s = "
            f"{row['chunks_per_s']:.1f} chunks/s"
        )
    print(
        f"two / one = {two['chunks_per_s'] / one['chunks_per_s']:.2f}\n"
        f"handover: SIGTERM to B after {gone['embedded_at_sigterm']:.0f} of {gone['chunks']} "
        f"chunks embedded; B exited in {gone['b_exit_s']} s\n"
        f"statuses of all {record['documents']} documents (A's API): {record['statuses']}, "
        f"{record['all_indexed_after_b_left_s']} s after B left\n"
        f"consumer lag per group after: {record['lag_after']}",
        flush=True,
    )


def summary(record: dict[str, Any]) -> list[list[str]]:
    one, two = record["one"], record["two"]
    indexed = record["statuses"].get("indexed", 0)
    return [
        [
            "scale-out chunks/s, two workers",
            f"{two['chunks_per_s']:.1f} ({two['chunks_per_s'] / one['chunks_per_s']:.2f}x)",
            f"one worker {one['chunks_per_s']:.1f}",
            "-",
        ],
        [
            "scale-out handover: documents indexed",
            f"{indexed} of {record['documents']}",
            f"lag {sum(record['lag_after'].values())}",
            "all, lag 0",
        ],
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=300, help="SciFact documents per phase")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--settle", type=float, default=15.0, help="seconds after B joins")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per phase")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)

    started_load = load_average()
    partitions = {"DOCSTREAM_PARTITIONS": str(args.partitions)}
    with pipeline("scaleout", partitions, cleanup=cleanup) as run:
        record = measure(run, args)
    record["documents"] = 3 * args.docs
    report(record)
    write_record(
        "scaleout",
        {
            **record_header("scaleout", started_load, argv),
            "partitions": args.partitions,
            "worker_b_stages": B_STAGES,
            **record,
        },
        args.json_out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
