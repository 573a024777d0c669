"""Cross-cutting edge behaviour: correlation ids and request metrics."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.correlation import current_correlation_id, mint_correlation_id
from core.metrics import HTTP_REQUESTS, HTTP_SECONDS

HEADER = b"x-correlation-id"
MAX_ID_LENGTH = 128


class HttpMiddleware:
    """An ASGI middleware that acts on HTTP requests only: lifespan and other
    scopes pass through to the app untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class CorrelationMiddleware(HttpMiddleware):
    """Keep the caller's X-Correlation-ID (or mint one), expose it to every log
    line of the request, and echo it on the response."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = dict(scope["headers"]).get(HEADER, b"").decode("latin-1").strip()
        correlation_id = (
            given[:MAX_ID_LENGTH] if given.isprintable() and given else mint_correlation_id()
        )
        scope.setdefault("state", {})["correlation_id"] = correlation_id
        token = current_correlation_id.set(correlation_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (HEADER, correlation_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_correlation_id.reset(token)


class MetricsMiddleware(HttpMiddleware):
    """Count every answer and time it, labelled by route template and status."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = _route_of(scope)
            HTTP_REQUESTS.labels(route, scope["method"], str(status)).inc()
            HTTP_SECONDS.labels(route, scope["method"]).observe(time.perf_counter() - started)


def _route_of(scope: Scope) -> str:
    # Label by route template, not raw path, so labels stay bounded.
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"
