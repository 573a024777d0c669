"""Shared by the issue-7 benchmarks (ingest, freshness, memory, scale-out):
the corpora they publish, the chunk texts the pipeline will embed, what the
worker's /metrics and /proc say, and the cleanup of a run's topics, graph and
Qdrant folder."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import scifact
from bench.quality import sample_value
from bench.rebuild_events import SENTENCE
from core.kafka.admin import admin_client
from core.settings import Settings
from schemas.events import DocumentEvent
from sinks.neo4j.store import Neo4jGraphStore
from streams.chunker import SentenceChunker

SINKS = ("qdrant-sink", "neo4j-sink")


# --- corpora ------------------------------------------------------------------------


def scifact_rows(dataset: Path = scifact.DATASET) -> list[dict[str, str]]:
    with scifact.path(dataset, "corpus.jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def scifact_documents(limit: int, dataset: Path = scifact.DATASET) -> list[DocumentEvent]:
    """The first `limit` SciFact abstracts (title + abstract), one document each."""
    now = int(time.time() * 1000)
    return [
        DocumentEvent(
            doc_id=row["_id"], version=1, occurred_at=now, title=row["title"], text=row["text"]
        )
        for row in scifact_rows(dataset)[:limit]
    ]


def sentences(dataset: Path = scifact.DATASET) -> list[str]:
    """Every sentence of the SciFact abstracts: the stuff synthetic documents are made of."""
    return [s for row in scifact_rows(dataset) for s in SENTENCE.split(row["text"]) if s.strip()]


def synthetic_documents(
    count: int, seed: int = 7, paragraphs: tuple[int, int] = (4, 8)
) -> list[DocumentEvent]:
    """Longer documents, the same for the same seed: 4 to 8 paragraphs of 3 to 6
    SciFact sentences drawn at random (about 500 to 1,200 words: several chunks)."""
    rng = random.Random(seed)
    pool = sentences()
    now = int(time.time() * 1000)
    docs = []
    for i in range(count):
        body = [
            " ".join(rng.choice(pool) for _ in range(rng.randint(3, 6)))
            for _ in range(rng.randint(*paragraphs))
        ]
        docs.append(
            DocumentEvent(
                doc_id=f"syn{seed}-{i}",
                version=1,
                occurred_at=now,
                title=f"Synthetic report {i}",
                text="\n\n".join(body),
                source="synthetic",
            )
        )
    return docs


def chunk_texts(settings: Settings, docs: Sequence[DocumentEvent]) -> list[str]:
    """The texts the embedder stage will get for these documents: the worker's
    own chunker with the worker's settings."""
    chunker = SentenceChunker.for_model(settings.chunker, settings.embedder.model)
    return [c.text for d in docs for c in chunker.chunk(d.doc_id, d.text)]


# --- the worker process -----------------------------------------------------------


def child_pids(marker: str = "ops.cli") -> list[int]:
    """This process's children whose command line holds `marker` (the workers
    `bench.pipeline` and the benches started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
        if int(stat[1]) == os.getpid() and marker in cmdline:
            found.append(int(entry.name))
    return sorted(found)


def worker_pid() -> int:
    pids = child_pids()
    if len(pids) != 1:
        raise RuntimeError(f"expected one worker child process, found {pids}")
    return pids[0]


def memory_mib(pid: int | str = "self") -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak RSS so far) of a process, in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


# --- the worker's metrics -----------------------------------------------------------


def written(text: str) -> dict[str, float]:
    """Chunks each sink has written so far, and the consumer lag of the stages."""
    out = {
        sink: sample_value(text, "docstream_events_total", stage=sink, outcome="ok")
        for sink in SINKS
    }
    out["lag"] = sum(
        sample_value(text, "docstream_consumer_lag", stage=s) for s in ("embedder", *SINKS)
    )
    return out


def stage_seconds(text: str) -> dict[str, float]:
    """Seconds each stage has spent in its handler so far (wall, not CPU)."""
    stages = ("chunker", "embedder", *SINKS)
    return {s: sample_value(text, "docstream_stage_seconds_sum", stage=s) for s in stages}


async def wait_written(
    urls: Sequence[str], expected: dict[str, float], timeout_s: float, poll_s: float = 1.0
) -> float:
    """Until the sinks (summed over the workers at `urls`) have written at least
    `expected[sink]` chunks each; the seconds it took. Reads /metrics only."""
    started = time.monotonic()
    last = 0.0
    async with httpx.AsyncClient(timeout=30) as client:
        while (waited := time.monotonic() - started) < timeout_s:
            try:
                texts = [(await client.get(f"{u}/metrics")).text for u in urls]
            except httpx.HTTPError:
                # The embedded store's index build holds the worker's GIL for
                # seconds at a time: a scrape may fail then. Ask again.
                await asyncio.sleep(poll_s)
                continue
            counts = [written(t) for t in texts]
            done = {s: sum(c[s] for c in counts) for s in SINKS}
            if all(done[s] >= expected[s] for s in SINKS):
                return time.monotonic() - started
            if waited - last >= 10:
                last = waited
                print(f"  {waited:5.0f} s: written {done} of {expected}", flush=True)
            await asyncio.sleep(poll_s)
    raise RuntimeError(f"not written after {timeout_s:.0f} s")


def metrics_text(url: str) -> str:
    return httpx.get(f"{url}/metrics", timeout=30).text


# --- cleanup ------------------------------------------------------------------------


async def delete_graph(store: Neo4jGraphStore, graph: str) -> None:
    """Every node of the generations of `graph`, and its DocstreamGraph node."""
    async with store.driver.session() as session:
        result = await session.run(
            "MATCH (n:Document|Chunk|Entity) WHERE n.gen STARTS WITH $prefix "
            "CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS",
            prefix=f"{graph}:",
        )
        await result.consume()
    await store.driver.execute_query(
        "MATCH (g:DocstreamGraph {name: $graph}) DELETE g", graph=graph
    )


async def drop_graph(settings: Settings) -> None:
    """The run's nodes in the shared Neo4j (its graph name is the run's own)."""
    store = Neo4jGraphStore(settings.neo4j)
    try:
        await delete_graph(store, settings.neo4j.graph)
    finally:
        await store.close()


def record_header(bench: str, load_at_start: list[float], argv: list[str] | None) -> dict[str, Any]:
    """What every benchmark record opens with: which, when, on how many cores,
    how loaded the machine was, and the arguments it ran with."""
    return {
        "bench": bench,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_average(),
        "argv": sys.argv[1:] if argv is None else argv,
    }


def drop_kafka(settings: Settings) -> None:
    """Topics and consumer groups named after the run (Faust's included)."""
    run = settings.kafka.group_id
    admin = admin_client(settings.kafka)
    topics = [t for t in admin.list_topics(timeout=30).topics if t.startswith(run)]
    futures = dict(admin.delete_topics(topics, operation_timeout=30)) if topics else {}
    listed = admin.list_consumer_groups(request_timeout=30).result()
    groups = [g.group_id for g in listed.valid if g.group_id.startswith(run)]
    if groups:
        futures.update(admin.delete_consumer_groups(groups, request_timeout=30))
    for name, future in futures.items():
        try:
            future.result(timeout=30)
        except Exception as exc:  # say what was left behind, but finish the cleanup
            print(f"cleanup: {name}: {exc}", file=sys.stderr)


def cleanup(settings: Settings) -> None:
    """After the run's workers stopped: its topics, groups, graph and Qdrant
    folder (a server of the run's own goes with its folder, bench.pipeline)."""
    try:
        drop_kafka(settings)
        asyncio.run(drop_graph(settings))
    finally:
        if settings.qdrant.embedded:  # else `path` is the default, not the run's
            shutil.rmtree(settings.qdrant.path, ignore_errors=True)


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]
