"""Dependency checks with real clients: a Kafka metadata request, a Bolt
`RETURN 1`, a Qdrant collections call. Each is bounded by a timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.middleware import CorrelationMiddleware, MetricsMiddleware
from core.kafka.offsets import Offsets
from core.settings import KafkaSettings

Check = Callable[[], Awaitable[None]]
try:
    VERSION = version("docstream")
except PackageNotFoundError:  # running from a checkout that was never installed
    VERSION = "0+unknown"


class KafkaCheck:
    def __init__(self, kafka: KafkaSettings, timeout_s: float = 2.0) -> None:
        self._offsets = Offsets(kafka, timeout_s)

    async def __call__(self) -> None:
        cluster = await asyncio.to_thread(self._offsets.cluster)
        if not cluster.brokers:
            raise ConnectionError("no Kafka broker answered")


@dataclass
class HealthReport:
    states: dict[str, str]

    @property
    def ready(self) -> bool:
        return all(state == "up" for state in self.states.values())

    @property
    def down(self) -> list[str]:
        return sorted(name for name, state in self.states.items() if state != "up")


class Health:
    def __init__(
        self,
        checks: dict[str, Check],
        timeout_s: float = 3.0,
        about: Callable[[], dict[str, object]] | None = None,
    ) -> None:
        self.checks = checks
        self.timeout_s = timeout_s
        # Extra fields of /health, read on each request (the embedder's backend).
        self.about = about or dict

    async def report(self) -> HealthReport:
        names = list(self.checks)
        results = await asyncio.gather(
            *(asyncio.wait_for(self.checks[n](), self.timeout_s) for n in names),
            return_exceptions=True,
        )
        return HealthReport(
            {
                n: "up" if not isinstance(r, BaseException) else "down"
                for n, r in zip(names, results, strict=True)
            }
        )


def health_routes(health: Health) -> list[Route]:
    """/health, /health/live, /health/ready and /metrics: what every docstream
    process serves, the API and a worker without it alike."""
    started = time.monotonic()

    async def overview(request: Request) -> Response:
        report = await health.report()
        return JSONResponse(
            {
                "status": "ok" if report.ready else "degraded",
                "version": VERSION,
                "uptime_s": round(time.monotonic() - started, 1),
                "dependencies": report.states,
                **health.about(),
            }
        )

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

    return [
        Route("/health", overview, methods=["GET"]),
        Route("/health/live", live, methods=["GET"]),
        Route("/health/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]


def ops_app(health: Health) -> Starlette:
    """A worker run with --no-api still answers its probes and its scrapes."""
    middleware = [Middleware(MetricsMiddleware), Middleware(CorrelationMiddleware)]
    return Starlette(routes=health_routes(health), middleware=middleware)
