"""The tables `bench/rebuild.py` prints: ceilings, each store's bulk ceiling,
the rebuilds against them and against the target, CPU per chunk by process."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from bench.measure import Span, rate

TARGET_RATE = 5_000  # chunks/s from start to switch, both stores at once (issue 17)
TARGET_OF_CEILING = 0.8  # the rebuild's rate against the slowest bulk ceiling


class Run(Protocol):
    """A rebuild as `bench/rebuild.py` ran it."""

    @property
    def name(self) -> str: ...

    @property
    def span(self) -> Span: ...

    @property
    def progress(self) -> Sequence[Any]: ...

    @property
    def phases(self) -> dict[str, dict[str, float]]: ...

    @property
    def peak_rss_mb(self) -> float: ...

    @property
    def start_rss_mb(self) -> float: ...


def table_row(label: str, chunks_per_s: float, ceiling: float = 0.0, wall: float = 0.0) -> None:
    base = f"{ceiling:9,.0f}" if ceiling else ""
    versus = f"{chunks_per_s / ceiling:5.2f}x" if ceiling else ""
    seconds = f"{wall:6.1f}" if wall else ""
    print(f"| {label:42} | {chunks_per_s:9,.0f} | {base:>9} | {versus:>6} | {seconds:>6} |")


def rebuild_rows(runs: Sequence[Run], bulk: dict[str, Span], chunks: int) -> list[dict[str, Any]]:
    slowest = min((rate(chunks, s.wall) for s in bulk.values()), default=0.0)
    rows = []
    for run in runs:
        for progress in run.progress:
            name, seen = progress.target, run.phases[progress.target]
            done = seen["done"]
            switched = min(seen.get(p, done) for p in ("draining", "done"))
            to_switch = rate(chunks, switched)
            rows.append(
                {
                    "run": run.name,
                    "target": name,
                    "written": progress.written,
                    "seconds": round(done, 2),
                    "seconds_to_switch": round(switched, 2),
                    "chunks_per_s": rate(chunks, done),
                    "to_switch_chunks_per_s": to_switch,
                    "bulk_ceiling_chunks_per_s": rate(chunks, bulk[name].wall),
                    "slowest_ceiling_chunks_per_s": slowest,
                    "phases_s": {k: round(v, 2) for k, v in seen.items()},
                    "peak_rss_mb": round(run.peak_rss_mb, 1),
                    "start_rss_mb": round(run.start_rss_mb, 1),
                    "meets_target": to_switch >= TARGET_RATE,
                    "meets_ceiling_ratio": to_switch >= TARGET_OF_CEILING * slowest,
                }
            )
    return rows


def report(
    chunks: int,
    limits: dict[str, float],
    bulk: dict[str, Span],
    index_s: dict[str, float],
    runs: Sequence[Run],
) -> list[dict[str, Any]]:
    print(f"\n| {'chunks/s':42} | {'rate':>9} | {'ceiling':>9} | {'vs':>6} | {'wall s':>6} |")
    print(f"|{'-' * 44}|{'-' * 11}|{'-' * 11}|{'-' * 8}|{'-' * 8}|")
    for name, value in limits.items():
        table_row(f"ceiling, per CPU s: {name}", value)
    for name, span in bulk.items():
        table_row(f"bulk ceiling: {name}", rate(chunks, span.wall), wall=span.wall)
    rows = rebuild_rows(runs, bulk, chunks)
    for row in rows:
        label = f"rebuild {row['target']} ({row['run']}), to switch"
        ceiling = row["slowest_ceiling_chunks_per_s"]
        table_row(label, row["to_switch_chunks_per_s"], ceiling, row["seconds_to_switch"])
        table_row("  start to done (drain, drop)", row["chunks_per_s"], ceiling, row["seconds"])
    met = all(row["meets_target"] for row in rows)
    ratio = all(row["meets_ceiling_ratio"] for row in rows)
    print(f"\ntarget {TARGET_RATE:,} chunks/s from start to switch: {'met' if met else 'NOT met'}")
    print(f"target {TARGET_OF_CEILING} x the slowest bulk ceiling: {'met' if ratio else 'NOT met'}")
    for name, seconds in index_s.items():
        print(f"bulk ceiling {name}: of which index build (activate) {seconds:.1f} s")
    spans = [(f"bulk ceiling {n}", s) for n, s in bulk.items()]
    spans += [(f"rebuild {r.name}", r.span) for r in runs]
    print("\nCPU ms per chunk, by process (others: the rest of the machine)")
    print(f"| {'span':20} | {'bench':>6} | {'neo4j':>6} | {'kafka':>6} | {'others':>6} |")
    print(f"|{'-' * 22}|{'-' * 8}|{'-' * 8}|{'-' * 8}|{'-' * 8}|")
    for label, span in spans:
        cpu = [1000 * span.cpu.get(k, 0.0) / chunks for k in ("bench", "neo4j", "kafka", "others")]
        print(f"| {label:20} | " + " | ".join(f"{v:6.2f}" for v in cpu) + " |")
    for name, span in bulk.items():
        print(f"bulk ceiling {name}: slowest batch {span.slowest:.2f} s of {span.wall:.1f} s")
    for run in runs:
        print(
            f"rebuild {run.name}: peak memory of the bench process {run.peak_rss_mb:.0f} MB "
            f"({run.peak_rss_mb - run.start_rss_mb:+.0f} MB over its {run.start_rss_mb:.0f} MB "
            "at the start, which hold the events and the ceilings' data)"
        )
    for row in rows:
        print(f"rebuild {row['target']} ({row['run']}): phases (s from start) {row['phases_s']}")
    return rows
