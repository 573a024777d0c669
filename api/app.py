"""The Starlette edge. Routes:

GET /                          the search page (api/static/)
GET|POST /query                hybrid search: SSE (`Accept: text/event-stream`) or JSON;
                               `follow=true` keeps an SSE stream open (api/follow/)
POST /documents                one document or a batch (API key)
DELETE /documents/{doc_id}     a DELETE event (API key)
GET /documents/{doc_id}        where a document stands in the pipeline
GET /admin/status              offsets, lag, breakers, freshness, store counts (API key, always)
GET /health/live               the process answers
GET /health/ready              every dependency answers, else 503 naming them
GET /metrics                   Prometheus text format
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from api.admin import AdminStatus, StatusProvider
from api.auth import ReadKeyMiddleware
from api.follow.follower import parse_event_id
from api.follow.hub import FollowHub
from api.follow.stream import finished_one_shot, following, one_shot
from api.health import VERSION, Health, health_routes
from api.intake import Intake
from api.middleware import CorrelationMiddleware, MetricsMiddleware
from api.openapi import openapi
from api.problems import FieldError, problem
from api.queries import params_to_dict, query_from_dict
from api.ratelimit import RateLimitMiddleware
from api.search import Query, SearchService, report_failure
from api.sse import EventStream
from api.static import page_routes
from api.status import DocumentStatus
from core.logs import get_logger
from core.metrics import QUERY_IN_FLIGHT
from core.settings import ApiSettings

log = get_logger(__name__)
MAX_QUERY_BODY = 64 * 1024


async def read_json(request: Request, limit: int) -> Any:
    body = await request.body()
    if len(body) > limit:
        raise FieldError("body", f"must be at most {limit} bytes")
    try:
        return json.loads(body)
    except ValueError as exc:  # not JSON, or bytes that are not UTF-8
        raise FieldError("body", f"is not valid JSON: {exc}") from None


def plan_of(query: Query) -> list[str]:
    steps = {"hybrid": ["embed", "dense", "lexical", "fusion"], "dense": ["embed", "dense"]}
    return [*steps.get(query.mode, ["lexical"]), *(["graph"] if query.expand else [])]


def create_api(
    search: SearchService,
    health: Health,
    *,
    settings: ApiSettings | None = None,
    intake: Intake | None = None,
    status: DocumentStatus | None = None,
    admin_status: StatusProvider | None = None,
    lifespan: Any = None,
    extra_routes: Sequence[BaseRoute] = (),
    follow: FollowHub | None = None,
) -> Starlette:
    """The edge; `extra_routes` are mounted after its own (the worker adds the
    admin rebuild and replay routes of `api/rebuild.py`). Without a `follow`
    hub, follow mode is refused (503)."""
    settings = settings or ApiSettings()

    async def query(request: Request) -> Response:
        try:
            if request.method == "POST":
                body = await read_json(request, MAX_QUERY_BODY)
            else:
                body = params_to_dict(request.query_params)
            parsed = query_from_dict(body, search.limits)
        except FieldError as exc:
            return problem(422, "Invalid query", str(exc), field=exc.field)
        meta = {
            "correlation_id": request.scope["state"]["correlation_id"],
            "query": parsed.text,
            "k": parsed.k,
            "mode": parsed.mode,
            "fusion": parsed.fusion,
            "plan": plan_of(parsed),
        }
        last_event_id = request.headers.get("last-event-id")
        streaming = "text/event-stream" in request.headers.get("accept", "")
        if parsed.follow:
            if not streaming:
                return problem(
                    422,
                    "Invalid query",
                    "follow needs a stream: send Accept: text/event-stream",
                    field="follow",
                )
            return _follow(follow, settings, parsed, meta, last_event_id)
        if finished_one_shot(last_event_id):
            # An EventSource reconnecting after `done`: 204 tells it to stop.
            return Response(status_code=204)
        if streaming:
            return EventStream(
                one_shot(search, parsed, meta),
                settings.sse_heartbeat_s,
                retry_ms=settings.sse_retry_ms,
            )
        try:
            return JSONResponse(await _collect(search, parsed, meta))
        except Exception as exc:  # a bug of ours (a store's failure only degrades)
            error = report_failure(exc, meta["correlation_id"])
            detail, correlation_id = error["message"], error["correlation_id"]
            return problem(500, "Query failed", detail, correlation_id=correlation_id)

    async def schema(request: Request) -> Response:
        return JSONResponse(openapi(VERSION))

    routes: list[BaseRoute] = [
        Route("/query", query, methods=["GET", "POST"]),
        *page_routes(),
        *health_routes(health),
        Route("/openapi.json", schema, methods=["GET"]),
    ]
    if status is not None:
        routes.append(Route("/documents/{doc_id:path}", status.get, methods=["GET"]))
    if admin_status is not None:
        admin = AdminStatus(admin_status, settings.api_keys)
        routes.append(Route("/admin/status", admin.get, methods=["GET"]))
    if intake is not None:
        routes += [
            Route("/documents", intake.post, methods=["POST"]),
            Route("/documents/{doc_id:path}", intake.delete, methods=["DELETE"]),
        ]
    routes += extra_routes
    return Starlette(routes=routes, middleware=edge_middleware(settings), lifespan=lifespan)


def edge_middleware(settings: ApiSettings) -> list[Middleware]:
    """Outermost first: metrics see every answer, every answer carries the
    correlation id, CORS answers preflights before keys and limits apply."""
    stack = [Middleware(MetricsMiddleware), Middleware(CorrelationMiddleware)]
    if settings.cors_origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST", "DELETE"],
                allow_headers=[
                    "Authorization",
                    "X-API-Key",
                    "Content-Type",
                    "X-Correlation-ID",
                    "Last-Event-ID",
                ],
                expose_headers=["X-Correlation-ID", "Retry-After"],
            )
        )
    if settings.rate_limit_per_s > 0:
        stack.append(
            Middleware(
                RateLimitMiddleware,
                rate_per_s=settings.rate_limit_per_s,
                burst=settings.rate_limit_burst,
            )
        )
    if settings.reads_need_key:
        stack.append(Middleware(ReadKeyMiddleware, keys=settings.api_keys))
    return stack


def _follow(
    hub: FollowHub | None,
    settings: ApiSettings,
    query: Query,
    meta: dict[str, Any],
    last_event_id: str | None,
) -> Response:
    if hub is None:
        return problem(503, "Follow mode unavailable", "this API process does not follow notices")
    reset = ""
    if last_event_id:
        resumed = _resume(hub, settings, meta, last_event_id)
        if resumed is not None:
            return resumed
        reset = "the stream named by Last-Event-ID is no longer kept: start over with this one"
    follower = hub.open(query)
    if follower is None:
        return problem(
            429,
            "Too many followers",
            f"this API process serves {settings.follow_max} followers at most; "
            "retry later or ask another process",
            headers={"Retry-After": "5"},
        )
    return EventStream(
        following(hub, follower, meta, reset=reset),
        settings.sse_heartbeat_s,
        last_kind="dropped",
        retry_ms=settings.sse_retry_ms,
    )


def _resume(
    hub: FollowHub, settings: ApiSettings, meta: dict[str, Any], last_event_id: str
) -> Response | None:
    """The follower a Last-Event-ID names, resumed after it; None if it is not kept."""
    named = parse_event_id(last_event_id)
    follower = hub.find(named[0]) if named else None
    if named is None or follower is None or follower.ended:
        return None
    missed = follower.since(named[1])
    if missed is None:
        return None
    return EventStream(
        following(hub, follower, meta, resume=missed),
        settings.sse_heartbeat_s,
        last_kind="dropped",
        retry_ms=settings.sse_retry_ms,
    )


async def _collect(search: SearchService, query: Query, meta: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {**meta, "hits": [], "degraded": []}
    QUERY_IN_FLIGHT.inc()
    try:
        async for event in search.run(query):
            if event.kind == "hit":
                body["hits"].append(event.data)
            elif event.kind == "degraded":
                body["degraded"].append(event.data)
            else:
                body["timings"] = event.data["timings"]
    finally:
        QUERY_IN_FLIGHT.dec()
    return body
