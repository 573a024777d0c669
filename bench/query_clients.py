"""The SSE clients of bench/query.py: users that each hold a connection,
send `GET /query` one after another (or pausing like a reader), and time the
first `hit` and the `done` of every answer, next to the server's own timings."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence
from typing import Any

import httpx


def percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"n": len(ordered), "p50": at(0.50), "p95": at(0.95), "p99": at(0.99)}


async def one_query(client: httpx.AsyncClient, text: str, params: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    first_hit = done = None
    degraded = 0
    timings: dict[str, float] = {}
    headers = {"Accept": "text/event-stream"}
    async with client.stream("GET", "/query", params={"q": text, **params}, headers=headers) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if line == "event: hit" and first_hit is None:
                first_hit = (time.perf_counter() - started) * 1000
            elif line == "event: degraded":
                degraded += 1
            elif line == "event: done":
                done = (time.perf_counter() - started) * 1000
            elif done is not None and line.startswith("data: ") and not timings:
                timings = json.loads(line.removeprefix("data: "))["timings"]
        # Read to the end of the response, as an EventSource does: leaving after
        # `done` would make httpx drop the connection and each query pay a new one.
    return {"first_hit": first_hit, "done": done, "degraded": degraded, "timings": timings}


async def load(
    base_url: str,
    queries: list[str],
    clients: int,
    duration: float,
    think: float,
    params: dict[str, Any],
) -> dict[str, Any]:
    timeout = httpx.Timeout(30.0)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as client:
        warm = await asyncio.gather(*(one_query(client, q, params) for q in queries[:4]))
        for query in queries:  # one pass: the query-embedding cache is warm after it
            warm.append(await one_query(client, query, params))
    samples: list[dict[str, Any]] = []
    errors: list[str] = []
    deadline = time.monotonic() + duration

    async def run(offset: int) -> None:
        """One user: its own connection, as each browser has."""
        i = offset
        async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as client:
            if think:  # users arrive spread over a pause, not all in the same millisecond
                await asyncio.sleep(random.uniform(0, think))
            while time.monotonic() < deadline:
                try:
                    samples.append(await one_query(client, queries[i % len(queries)], params))
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                i += clients
                if think:  # a user reading the answer: uniform around --think
                    await asyncio.sleep(random.uniform(0.5 * think, 1.5 * think))

    started = time.monotonic()
    await asyncio.gather(*(run(n) for n in range(clients)))
    elapsed = time.monotonic() - started
    return {
        "queries": len(samples),
        "per_s": round(len(samples) / elapsed, 1),
        "errors": len(errors),
        "degraded": sum(s["degraded"] > 0 for s in samples),
        "first_hit_ms": percentiles([s["first_hit"] for s in samples if s["first_hit"]]),
        "done_ms": percentiles([s["done"] for s in samples if s["done"]]),
        # What the server's SearchService measured (no HTTP, SSE or waiting for the loop).
        "server_ms": {
            stage: percentiles([s["timings"][stage] for s in samples if stage in s["timings"]])
            for stage in ("total_ms", "embed_ms", "dense_ms", "lexical_ms", "graph_ms")
        },
        "cold_done_ms": percentiles([s["done"] for s in warm[4:] if s["done"]]),
    }
