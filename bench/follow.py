"""Follow mode: 100 followers with different queries while documents are
published at half the pipeline's maximum rate, then some deleted.

1. Start the stack (if nothing answers) and one worker with the API on fresh
   topics (`bench.pipeline`).
2. The maximum: a burst of --burst one-chunk documents timed until both sinks
   hold them (or --max-rate, docs/s). The phases publish at half of it.
3. A baseline phase of --duration seconds with no follower: the API process's
   CPU (`process_cpu_seconds_total` of its /metrics) at that rate.
4. The follow phase: --followers SSE followers, follower j asking
   `mode=lexical` for a word only the documents of group j contain (so which
   follower must see which document is known), then --duration seconds of
   documents at the same rate, each of group i mod --followers; then
   --deletes of them deleted. Every follower must get a `hit` for each
   document of its group and a `retract` for each deleted one: a document not
   hit is a miss, a deleted one not retracted is one still shown (both
   counted). The delay is the follower's receive time less the hit's
   `indexed_at` (the last sink's write: the document became queryable), next
   to the API's own `docstream_follow_delay_seconds` over the same phase.
5. The API's CPU per notification: (follow phase CPU - baseline CPU) /
   document versions announced. The worker runs the API in its own process
   (embedded Qdrant), so the baseline takes the pipeline's own CPU out.

Target at half rate: p50 <= 200 ms, p99 <= 1 s, no miss, none still shown.

    .venv/bin/python -m bench.follow                                # 120 s phases
    .venv/bin/python -m bench.follow --duration 20 --burst 100      # a short run

The JSON record goes to bench/results/follow.json (or --json-out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from bench.corpora import cleanup, load_average, metrics_text, record_header
from bench.freshness import ShortDocuments, max_rate, paced, quantile
from bench.pipeline import RunningPipeline, pipeline, write_record
from bench.quality import publish, sample_value
from bench.query import percentiles
from core.correlation import mint_correlation_id, mint_traceparent
from ops.publishing.publisher import DocumentPublisher
from schemas.codec import codec_for
from schemas.events import DocumentEvent

TARGET_P50_MS = 200.0
TARGET_P99_MS = 1000.0


def word(group: int) -> str:
    """A word of group `group` only: follower `group` asks for it."""
    return f"flw{group:03d}grp"


@dataclass
class Follower:
    group: int
    hits: dict[str, float] = field(default_factory=dict)  # doc_id -> delay ms
    retracts: set[str] = field(default_factory=set)
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    error: str = ""


async def follow(client: httpx.AsyncClient, follower: Follower, stop: asyncio.Event) -> None:
    params = {"q": word(follower.group), "mode": "lexical", "k": 100, "expand": 0}
    try:
        async with aconnect_sse(
            client, "GET", "/query", params={**params, "follow": "true"}
        ) as source:
            async for event in source.aiter_sse():
                data = json.loads(event.data)
                if event.event == "done":
                    follower.answered.set()
                elif event.event == "hit" and data.get("follow"):
                    delay = (time.time() - data["indexed_at"]) * 1000
                    follower.hits.setdefault(data["doc_id"], delay)
                elif event.event == "retract":
                    follower.retracts.add(data["doc_id"])
                elif event.event in ("dropped", "reset"):
                    follower.error = event.event
                if stop.is_set():
                    return
    except (Exception, asyncio.CancelledError) as exc:  # counted as a failed follower
        if not stop.is_set():
            follower.error = repr(exc)
    finally:
        follower.answered.set()


def grouped(docs: ShortDocuments, groups: int, groups_of: dict[str, int]) -> ShortDocuments:
    """Each next document carries the word of its group (round robin)."""
    made = docs.next

    def next_in_group() -> DocumentEvent:
        doc = made()
        group = len(groups_of) % groups
        groups_of[doc.doc_id] = group
        return DocumentEvent(
            doc_id=doc.doc_id,
            version=doc.version,
            occurred_at=doc.occurred_at,
            text=f"{word(group)} {doc.text}",
            title="",
        )

    docs.next = next_in_group  # type: ignore[method-assign]
    return docs


def publish_paced(
    run: RunningPipeline, docs: ShortDocuments, rate: float, seconds: float
) -> dict[str, float]:
    sent: dict[str, float] = {}
    publisher = DocumentPublisher(
        run.settings.kafka, codec_for("DocumentEvent"), mint_correlation_id(), mint_traceparent()
    )
    publisher.publish(paced(docs, rate, seconds, sent))
    return sent


def api_cpu(run: RunningPipeline) -> float:
    return sample_value(metrics_text(run.base_url), "process_cpu_seconds_total")


def notifications(run: RunningPipeline) -> float:
    return sample_value(metrics_text(run.base_url), "docstream_follow_notifications_total")


def delay_buckets(text: str) -> list[tuple[float, float]]:
    from prometheus_client.parser import text_string_to_metric_families

    out = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "docstream_follow_delay_seconds_bucket":
                out.append((float(sample.labels["le"]), sample.value))
    return sorted(out)


async def follow_phase(
    run: RunningPipeline, docs: ShortDocuments, rate: float, args: argparse.Namespace
) -> dict[str, Any]:
    groups_of: dict[str, int] = {}
    grouped(docs, args.followers, groups_of)
    followers = [Follower(j) for j in range(args.followers)]
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=args.followers + 10)
    timeout = httpx.Timeout(30, read=None)
    async with httpx.AsyncClient(base_url=run.base_url, limits=limits, timeout=timeout) as client:
        tasks = [asyncio.create_task(follow(client, f, stop)) for f in followers]
        await asyncio.gather(*(f.answered.wait() for f in followers))
        refused = [f.group for f in followers if f.error]
        before_text, cpu_before, told_before = (
            metrics_text(run.base_url),
            api_cpu(run),
            notifications(run),
        )
        started = time.monotonic()
        sent = await asyncio.to_thread(publish_paced, run, docs, rate, args.duration)
        deleted = list(sent)[:: max(1, len(sent) // max(args.deletes, 1))][: args.deletes]
        await asyncio.sleep(args.settle)  # the last ones through the sinks before deleting
        publish(
            run,
            [
                DocumentEvent(doc_id=d, version=2, op="DELETE", occurred_at=int(time.time() * 1000))
                for d in deleted
            ],
        )
        deadline = time.monotonic() + args.drain
        while time.monotonic() < deadline:
            missing = sum(d not in followers[groups_of[d]].hits for d in sent)
            shown = sum(d not in followers[groups_of[d]].retracts for d in deleted)
            if not missing and not shown:
                break
            await asyncio.sleep(0.5)
        wall = time.monotonic() - started
        cpu_after, told_after, after_text = (
            api_cpu(run),
            notifications(run),
            metrics_text(run.base_url),
        )
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    delays = [f.hits[d] for d in sent for f in [followers[groups_of[d]]] if d in f.hits]
    order = list(sent)
    missed_at = [i for i, d in enumerate(order) if d not in followers[groups_of[d]].hits]
    told = told_after - told_before
    return {
        "rate_docs_per_s": rate,
        "followers": args.followers,
        "refused_or_failed": refused,
        "sent": len(sent),
        "deleted": len(deleted),
        "missed": len(missed_at),
        "missed_at": missed_at[:50],  # positions in the publishing order, for diagnosis
        "deleted_still_shown": sum(d not in followers[groups_of[d]].retracts for d in deleted),
        "foreign_hits": sum(
            1 for f in followers for d in f.hits if groups_of.get(d, f.group) != f.group
        ),
        "delay_ms": percentiles(delays),
        "api_histogram_ms": {
            f"p{int(q * 100)}": quantile(q, delay_buckets(before_text), delay_buckets(after_text))
            for q in (0.5, 0.99)
        },
        "notifications": told,
        "api_cpu_s": round(cpu_after - cpu_before, 2),
        "wall_s": round(wall, 1),
    }


def baseline_phase(
    run: RunningPipeline, docs: ShortDocuments, rate: float, seconds: float
) -> dict[str, Any]:
    cpu_before, started = api_cpu(run), time.monotonic()
    sent = publish_paced(run, docs, rate, seconds)
    time.sleep(2)
    return {
        "sent": len(sent),
        "api_cpu_s": round(api_cpu(run) - cpu_before, 2),
        "wall_s": round(time.monotonic() - started, 1),
    }


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def cpu_per_notification(record: dict[str, Any]) -> float | None:
    """ms of API CPU per notification: the follow phase's less the baseline's,
    the baseline scaled to the follow phase's length."""
    row, base = record["follow"], record["baseline"]
    extra = row["api_cpu_s"] - base["api_cpu_s"] * row["wall_s"] / max(base["wall_s"], 1e-9)
    return round(extra / row["notifications"] * 1000, 2) if row["notifications"] else None


def report(record: dict[str, Any]) -> None:
    row, base = record["follow"], record["baseline"]
    mine, api = row["delay_ms"], row["api_histogram_ms"]
    per = record["api_cpu_ms_per_notification"]
    per_follower = "-" if per is None else f"{per / row['followers']:.3f}"
    lines = [
        f"\nfollow: {row['followers']} followers, {row['rate_docs_per_s']:.1f} docs/s "
        f"(half the max {record['max_docs_per_s']:.1f}), "
        f"sent {row['sent']}, deleted {row['deleted']}",
        f"  queryable -> hit at the follower: p50 {fmt(mine.get('p50'))} ms "
        f"(target <= {TARGET_P50_MS:.0f})  p99 {fmt(mine.get('p99'))} ms "
        f"(target <= {TARGET_P99_MS:.0f})",
        f"  the API's own histogram (last write -> event sent): "
        f"p50 {fmt(api.get('p50'))} ms  p99 {fmt(api.get('p99'))} ms",
        f"  missed {row['missed']} (target 0), deleted still shown "
        f"{row['deleted_still_shown']} (target 0), hits of another group "
        f"{row['foreign_hits']} (target 0), followers failed {len(row['refused_or_failed'])}",
        f"  API CPU {row['api_cpu_s']} s in {row['wall_s']} s with followers; baseline "
        f"{base['api_cpu_s']} s in {base['wall_s']} s without; "
        f"{row['notifications']:.0f} notifications: {'-' if per is None else per} ms "
        f"per notification ({per_follower} ms per follower and notification)",
        f"  load average {record.get('load_average')} (a shared machine: CPU figures are noisy)",
    ]
    print("\n".join(lines), flush=True)


def summary(record: dict[str, Any]) -> list[list[str]]:
    """The row of `make bench`'s table."""
    row, api = record["follow"], record["follow"]["api_histogram_ms"]
    mine = row["delay_ms"]
    return [
        [
            f"follow, {row['followers']} followers at {row['rate_docs_per_s']:.1f} docs/s",
            f"p50 {fmt(mine.get('p50'))} p99 {fmt(mine.get('p99'))} ms; missed {row['missed']}, "
            f"still shown {row['deleted_still_shown']}",
            f"API histogram p50 {fmt(api.get('p50'))} p99 {fmt(api.get('p99'))} ms; "
            f"{record['api_cpu_ms_per_notification']} ms CPU per notification",
            f"p50 <= {TARGET_P50_MS:.0f}, p99 <= {TARGET_P99_MS:.0f}, 0 missed, 0 shown",
        ]
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--followers", type=int, default=100)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds per phase")
    parser.add_argument("--max-rate", type=float, default=0.0, help="docs/s; 0: measure it")
    parser.add_argument("--burst", type=int, default=300, help="documents to measure the max")
    parser.add_argument("--deletes", type=int, default=20)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--drain", type=float, default=60.0)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    env = {"DOCSTREAM_FOLLOW_MAX": str(args.followers + 10), "DOCSTREAM_SSE_HEARTBEAT_S": "5"}
    load_at_start = load_average()
    with pipeline("follow", env, cleanup=cleanup) as run:
        docs = ShortDocuments(seed=16)
        top = args.max_rate or max_rate(run, docs, args.burst, 600)
        rate = top / 2
        record: dict[str, Any] = {
            **record_header("follow", load_at_start, argv),
            "max_docs_per_s": round(top, 2),
        }
        record["baseline"] = baseline_phase(run, docs, rate, args.duration)
        record["follow"] = asyncio.run(follow_phase(run, docs, rate, args))
        record["load_average"] = load_average()
        record["api_cpu_ms_per_notification"] = cpu_per_notification(record)
        report(record)
        write_record("follow", record, args.json_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
