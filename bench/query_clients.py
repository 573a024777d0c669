"""The SSE clients of bench/query.py: users that each hold a connection,
send `GET /query` one after another (or pausing like a reader), and time the
first `hit` and the `done` of every answer, next to the server's own timings.

Two clients speak to the server: `raw` (bench/sse_wire.py, the default: it
costs the shared cores little) and `httpx` (what the benchmark used before,
kept to compare: its own CPU shows in the latencies it reports)."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from bench.measure import Span, measured
from bench.sse_wire import Answer, EventTimer, SseConnection, WireError

CLIENTS = ("raw", "httpx")
# One user's connection: ask one query, or close.
Ask = Callable[[str], Awaitable[Answer]]
Close = Callable[[], Awaitable[None]]


def cpu_per_query(span: Span, answers: int) -> dict[str, float]:
    """Where the cores went while the users ran: the server's and the clients'
    CPU per answer, and the share of the machine's CPU time the hypervisor
    stole (a noisy neighbour stretches every latency measured here)."""
    answers = max(answers, 1)
    cores = os.cpu_count() or 1
    return {
        "server_ms_per_query": round(span.cpu.get("server", 0.0) * 1000 / answers, 2),
        "client_ms_per_query": round(span.cpu["bench"] * 1000 / answers, 2),
        "steal_pct": round(100 * span.cpu["steal"] / (span.wall * cores), 1),
    }


def percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"n": len(ordered), "p50": at(0.50), "p95": at(0.95), "p99": at(0.99)}


async def one_query(client: httpx.AsyncClient, text: str, params: dict[str, Any]) -> Answer:
    timer = EventTimer(time.perf_counter())
    headers = {"Accept": "text/event-stream"}
    async with client.stream("GET", "/query", params={"q": text, **params}, headers=headers) as r:
        r.raise_for_status()
        # Read to the end of the response, as an EventSource does: leaving after
        # `done` would make httpx drop the connection and each query pay a new one.
        async for body in r.aiter_bytes():
            timer.feed(body)
    return timer.answer


async def connect(client: str, base_url: str, params: dict[str, Any]) -> tuple[Ask, Close]:
    """A user's connection with the chosen client."""
    if client == "httpx":
        http = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(30.0))
        return (lambda text: one_query(http, text, params)), http.aclose
    url = urlsplit(base_url)
    wire = await SseConnection.open(url.hostname or "127.0.0.1", url.port or 80)

    async def ask(text: str) -> Answer:
        return await asyncio.wait_for(wire.get(f"/query?{urlencode({'q': text, **params})}"), 30)

    return ask, wire.close


@dataclass(frozen=True)
class Users:
    """How many users, for how long, how long each pauses between queries
    (0: none), and which client they use."""

    clients: int = 16
    duration: float = 60.0
    think: float = 0.0
    client: str = "raw"


async def load(
    base_url: str,
    queries: list[str],
    users: Users,
    params: dict[str, Any],
    server_pid: int | None = None,
) -> dict[str, Any]:
    clients, think, client = users.clients, users.think, users.client
    ask, close = await connect(client, base_url, params)
    try:
        # One pass: cold answers (each query embedded), and the cache warm after it.
        cold = [await ask(query) for query in queries]
    finally:
        await close()
    samples: list[Answer] = []
    errors: list[str] = []
    deadline = time.monotonic() + users.duration

    async def run(offset: int) -> None:
        """One user: its own connection, as each browser has."""
        i = offset
        ask, close = await connect(client, base_url, params)
        try:
            if think:  # users arrive spread over a pause, not all in the same millisecond
                await asyncio.sleep(random.uniform(0, think))
            while time.monotonic() < deadline:
                try:
                    samples.append(await ask(queries[i % len(queries)]))
                except (httpx.HTTPError, OSError, TimeoutError, WireError) as exc:
                    errors.append(repr(exc))
                    await close()  # a broken connection is not reused
                    ask, close = await connect(client, base_url, params)
                i += clients
                if think:  # a user reading the answer: uniform around --think
                    await asyncio.sleep(random.uniform(0.5 * think, 1.5 * think))
        finally:
            await close()

    with measured({"server": server_pid} if server_pid else {}) as span:
        await asyncio.gather(*(run(n) for n in range(clients)))
    return {
        "client": client,
        "queries": len(samples),
        "per_s": round(len(samples) / span.wall, 1),
        "cpu": cpu_per_query(span, len(samples)),
        "errors": len(errors),
        "degraded": sum(s.degraded > 0 for s in samples),
        "first_hit_ms": percentiles([s.first_hit_ms for s in samples if s.first_hit_ms]),
        "done_ms": percentiles([s.done_ms for s in samples if s.done_ms]),
        # What the server's SearchService measured (no HTTP, SSE or waiting for the loop).
        "server_ms": {
            stage: percentiles([s.timings[stage] for s in samples if stage in s.timings])
            for stage in ("total_ms", "embed_ms", "dense_ms", "lexical_ms", "graph_ms")
        },
        "cold_done_ms": percentiles([s.done_ms for s in cold if s.done_ms]),
    }
