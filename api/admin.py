"""GET /admin/status: the operator's view of the pipeline (Kafka offsets and lag,
breakers, freshness, how much each store holds) as JSON.

Always behind an API key, whatever DOCSTREAM_READS_NEED_KEY says: it names
brokers, topics and consumer groups. With no key configured it is closed.
What goes into the report is the provider's business (the composition root
passes one); this module only guards and serves it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.auth import admin_denied
from api.problems import problem

StatusProvider = Callable[[], Awaitable[dict[str, Any]]]


class AdminStatus:
    def __init__(self, provider: StatusProvider, keys: frozenset[str], timeout_s: float = 15.0):
        self.provider = provider
        self.keys = keys
        self.timeout_s = timeout_s

    async def get(self, request: Request) -> Response:
        if (denied := admin_denied(request, self.keys)) is not None:
            return denied
        try:
            report = await asyncio.wait_for(self.provider(), self.timeout_s)
        except TimeoutError:
            return problem(503, "Status unavailable", "the status report did not complete in time")
        return JSONResponse(report)
