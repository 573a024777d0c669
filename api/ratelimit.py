"""Per-client rate limiting: a token bucket per API key (or, without one, per
client address). Over the limit: 429 with Retry-After. Health and metrics are
exempt: probes and scrapers must always get through."""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import presented_key
from api.problems import problem
from core.metrics import RATE_LIMITED

EXEMPT_PREFIXES = ("/health", "/metrics")
MAX_CLIENTS = 10_000


@dataclass
class Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def take(self, client: str, now: float) -> float:
        """0 if the request may go, else the seconds until it could."""
        bucket = self._buckets.pop(client, None) or Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self._buckets[client] = bucket
        if len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)  # forget the least recent client
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate


def client_of(request: Request) -> str:
    key = presented_key(request)
    if key:  # never keep keys themselves in memory longer than needed
        return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
    return "addr:" + (request.client.host if request.client else "unknown")


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, rate_per_s: float, burst: int) -> None:
        self.app = app
        self.buckets = TokenBuckets(rate_per_s, burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(client_of(Request(scope)), time.monotonic())
        if wait > 0:
            RATE_LIMITED.inc()
            retry_after = str(max(1, math.ceil(wait)))
            response = problem(
                429,
                "Too many requests",
                f"slow down: retry in {retry_after} s",
                headers={"Retry-After": retry_after},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
