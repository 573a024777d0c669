"""Every benchmark that fits this machine, one after the other, then one table of
each figure next to its baseline and its target (`make bench`).

Each runs as its own process (`python -m bench.<name>`), so one failing or
running out of memory does not stop the others; each writes its JSON record
to bench/results/, which the table is read from. The default sizes aim at
about 45 minutes on 2 CPU cores; --quick is a smoke run of a few minutes
(figures too small to quote).

    .venv/bin/python -m bench.all                         # make bench
    .venv/bin/python -m bench.all --quick                 # make bench BENCH_ARGS=--quick
    .venv/bin/python -m bench.all --only ingest,freshness

The runs need the local stack (started if nothing answers) and a CPU; the GPU
rows of docs/PERFORMANCE.md need `bench.embedder --device cuda` by hand.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.pipeline import REPO, RESULTS

# name -> (record file in bench/results, default arguments, --quick arguments)
PLAN: dict[str, tuple[str, list[str], list[str]]] = {
    "ingest": ("ingest", [], ["--corpus", "scifact", "--docs", "40"]),
    "freshness": (
        "freshness",
        [],  # 5 minutes at each rate, as the figure is defined
        ["--duration", "15", "--burst", "100", "--drain", "20"],
    ),
    "memory": ("memory", [], ["--chunks", "5000", "--queries", "20", "--settle", "3"]),
    "scaleout": ("scaleout", [], ["--docs", "20", "--settle", "10"]),
    "embedder": (
        "embedder-cpu",
        ["--device", "cpu", "--limit", "300", "--rounds", "2"],
        ["--device", "cpu", "--limit", "64", "--rounds", "1"],
    ),
    "query": (
        "query",
        ["--chunks", "20000", "--duration", "30", "--embed", "500", "--think", "1.0"],
        [
            "--chunks",
            "2000",
            "--duration",
            "5",
            "--embed",
            "50",
            "--queries",
            "50",
            "--think",
            "1.0",
        ],
    ),
    "rebuild": ("rebuild", ["--chunks", "5000"], ["--chunks", "1000"]),
    "replay": ("replay", [], ["--docs", "30"]),
    "follow": ("follow", [], ["--duration", "20", "--burst", "100", "--deletes", "10"]),
}
Row = list[str]


def embedder_rows(record: dict[str, Any]) -> list[Row]:
    return [
        [
            f"embedder chunks/s ({record['device']}, {record['texts']} abstracts)",
            f"{record['embedder_chunks_per_s']['median']:.1f}",
            f"encode {record['encode_chunks_per_s']['median']:.1f}",
            ">= 20,000 on an H100" if record["device"] == "cuda" else "-",
        ]
    ]


def query_rows(runs: dict[str, Any]) -> list[Row]:
    return [row for record in runs["engines"].values() for row in engine_query_rows(record)]


def engine_query_rows(record: dict[str, Any]) -> list[Row]:
    sse, store = record["sse"], record["store_ms"]["dense top-30"]
    return [
        [
            f"query ms to done, p95 ({record['clients']} clients, think "
            f"{record['think_s']} s, {record['chunks']} chunks, {record['engine']})",
            f"{sse['done_ms'].get('p95', '-')} (first hit {sse['first_hit_ms'].get('p95', '-')}; "
            f"host steal {sse.get('cpu', {}).get('steal_pct', '-')}%)",
            f"store dense top-30 p95 {store.get('p95', '-')}",
            "done <= 40, first hit <= 20",
        ]
    ]


def rebuild_rows(runs: dict[str, Any]) -> list[Row]:
    return [
        row for engine, record in runs["engines"].items() for row in engine_rows(engine, record)
    ]


def engine_rows(engine: str, record: dict[str, Any]) -> list[Row]:
    return [
        [
            f"rebuild {row['target']} ({row['run']}) to switch, chunks/s "
            f"({record['chunks']}, {engine})",
            f"{row.get('to_switch_chunks_per_s', row['chunks_per_s']):.0f}",
            f"slowest bulk ceiling {row['slowest_ceiling_chunks_per_s']:.0f}"
            if row.get("slowest_ceiling_chunks_per_s")
            else "-",
            f">= {record['target_chunks_per_s']:,}",
        ]
        for row in record["rebuilds"]
    ]


def rows_for(name: str, record: dict[str, Any]) -> list[Row]:
    own: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
        "embedder": embedder_rows,
        "query": query_rows,
        "rebuild": rebuild_rows,
    }
    if name in own:
        return own[name](record)
    module = importlib.import_module(f"bench.{name}")
    rows: list[Row] = module.summary(record)
    return rows


def run(name: str, args: list[str]) -> tuple[int, float]:
    print(f"\n=== bench.{name} {' '.join(args)}", flush=True)
    started = time.monotonic()
    code = subprocess.run([sys.executable, "-m", f"bench.{name}", *args], cwd=REPO).returncode
    return code, time.monotonic() - started


def table(outcomes: dict[str, tuple[int, float, float]]) -> None:
    print("\n| figure | measured | baseline (same run) | target |\n|---|---|---|---|")
    for name, (code, seconds, started) in outcomes.items():
        path = RESULTS / f"{PLAN[name][0]}.json"
        fresh = path.exists() and path.stat().st_mtime >= started
        if code != 0 or not fresh:
            print(f"| {name} | failed (exit {code}, {seconds:.0f} s) | - | - |")
            continue
        try:
            for row in rows_for(name, json.loads(path.read_text())):
                print(f"| {' | '.join(row)} |")
        except (KeyError, TypeError, ValueError) as exc:
            print(f"| {name} | record unreadable: {exc!r} | - | - |")
    total = sum(seconds for _, seconds, _ in outcomes.values())
    print(f"\n{len(outcomes)} benchmarks in {total / 60:.1f} min; records in {RESULTS}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few minutes")
    parser.add_argument("--only", default="", help=f"comma list out of {', '.join(PLAN)}")
    parser.add_argument("--skip", default="", help="comma list of benchmarks to leave out")
    args = parser.parse_args(argv)

    chosen = [n for n in (args.only.split(",") if args.only else PLAN) if n]
    unknown = [n for n in chosen if n not in PLAN]
    if unknown:
        parser.error(f"unknown benchmarks {unknown}; choose from {', '.join(PLAN)}")
    skipped = set(args.skip.split(","))
    outcomes: dict[str, tuple[int, float, float]] = {}
    for name in (n for n in chosen if n not in skipped):
        started = time.time()
        code, seconds = run(name, PLAN[name][2] if args.quick else PLAN[name][1])
        outcomes[name] = (code, seconds, started)
    table(outcomes)
    return 0 if all(code == 0 for code, _, _ in outcomes.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
