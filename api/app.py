"""The Starlette edge. Routes:

GET /query?q=…&k=…&expand=…   SSE (`Accept: text/event-stream`) or JSON
GET /health/live               the process answers
GET /health/ready              every dependency answers, else 503 naming them
GET /metrics                   Prometheus text format
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.auth import ReadKeyMiddleware
from api.health import Health
from api.intake import Intake
from api.middleware import CorrelationMiddleware, MetricsMiddleware
from api.problems import problem
from api.search import Query, QueryLimits, SearchService
from api.status import DocumentStatus

HEARTBEAT_S = 15


class BadRequest(ValueError):
    """A query parameter is missing or out of range (answered with 422)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(name, f"must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(name, f"must be between {low} and {high}, got {value}")
    return value


def parse_query(request: Request, limits: QueryLimits) -> Query:
    text = request.query_params.get("q", "").strip()
    if not text:
        raise BadRequest("q", "is required and must not be blank")
    return Query(
        text=text,
        k=_int_param(request, "k", 10, 1, limits.max_k),
        expand=_int_param(request, "expand", 3, 0, limits.max_expand),
    )


def create_api(
    search: SearchService,
    health: Health,
    intake: Intake | None = None,
    status: DocumentStatus | None = None,
    lifespan: Any = None,
    read_keys: frozenset[str] | None = None,
) -> Starlette:
    """`read_keys` set: queries and status need one of them (health and metrics stay open)."""

    async def query(request: Request) -> Response:
        try:
            parsed = parse_query(request, search.limits)
        except BadRequest as exc:
            return problem(422, "Invalid query", str(exc), field=exc.field)
        correlation_id = request.scope["state"]["correlation_id"]
        meta = {
            "correlation_id": correlation_id,
            "query": parsed.text,
            "k": parsed.k,
            "plan": ["embed", "dense", "graph"],
        }
        if "text/event-stream" in request.headers.get("accept", ""):
            return EventSourceResponse(_sse(search, parsed, meta), ping=HEARTBEAT_S)
        return JSONResponse(await _collect(search, parsed, meta))

    async def live(request: Request) -> Response:
        return JSONResponse({"status": "live"})

    async def ready(request: Request) -> Response:
        report = await health.report()
        if report.ready:
            return JSONResponse({"status": "ready", "dependencies": report.states})
        return JSONResponse(
            {"status": "not ready", "down": report.down, "dependencies": report.states},
            status_code=503,
        )

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/query", query, methods=["GET"]),
        Route("/health/live", live, methods=["GET"]),
        Route("/health/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    if status is not None:
        routes.append(Route("/documents/{doc_id:path}", status.get, methods=["GET"]))
    if intake is not None:
        routes += [
            Route("/documents", intake.post, methods=["POST"]),
            Route("/documents/{doc_id:path}", intake.delete, methods=["DELETE"]),
        ]
    middleware = [Middleware(MetricsMiddleware), Middleware(CorrelationMiddleware)]
    if read_keys is not None:
        middleware.append(Middleware(ReadKeyMiddleware, keys=read_keys))
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


async def _sse(
    search: SearchService, query: Query, meta: dict[str, Any]
) -> AsyncIterator[ServerSentEvent]:
    event_id = 0
    yield ServerSentEvent(json.dumps(meta), event="meta", id=str(event_id))
    async for event in search.run(query):
        event_id += 1
        yield ServerSentEvent(json.dumps(event.data), event=event.kind, id=str(event_id))


async def _collect(search: SearchService, query: Query, meta: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {**meta, "hits": [], "degraded": []}
    async for event in search.run(query):
        if event.kind == "hit":
            body["hits"].append(event.data)
        elif event.kind == "degraded":
            body["degraded"].append(event.data)
        else:
            body["timings"] = event.data["timings"]
    return body
