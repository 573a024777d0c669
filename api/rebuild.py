"""/admin/rebuild: start, follow and interrupt a rebuild inside the worker.

The worker owns the stores (an embedded Qdrant can be opened by one process
only), so `docstream rebuild` asks the worker's API to run it:

    POST   /admin/rebuild {"target": "qdrant" | "neo4j" | "all"}   202, or 409 if one runs
    GET    /admin/rebuild                                          progress per target
    DELETE /admin/rebuild                                          interrupt (resumable)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.auth import admin_denied
from api.problems import problem

TARGETS = ("qdrant", "neo4j", "all")


class RebuildRun(Protocol):
    """What the route needs of a running rebuild (ops/rebuild.py's Rebuild)."""

    @property
    def running(self) -> bool: ...

    def cancel(self) -> None: ...

    def report(self) -> dict[str, Any]: ...


class RebuildControl:
    def __init__(self, start: Callable[[str], RebuildRun], keys: frozenset[str]) -> None:
        self.start = start  # target → a started rebuild
        self.keys = keys
        self.current: RebuildRun | None = None

    async def post(self, request: Request) -> Response:
        if (denied := admin_denied(request, self.keys)) is not None:
            return denied
        try:
            body = await request.json() if await request.body() else {}
        except ValueError:
            return problem(422, "Invalid JSON", "the body is not valid JSON", field="body")
        target = body.get("target", "all") if isinstance(body, dict) else None
        if target not in TARGETS:
            return problem(
                422, "Invalid target", f"target must be one of {', '.join(TARGETS)}", field="target"
            )
        if self.current is not None and self.current.running:
            return problem(409, "Rebuild running", "a rebuild is already running")
        self.current = self.start(target)
        return JSONResponse(self.current.report(), status_code=202)

    async def get(self, request: Request) -> Response:
        if (denied := admin_denied(request, self.keys)) is not None:
            return denied
        if self.current is None:
            return JSONResponse({"running": False, "targets": []})
        return JSONResponse(self.current.report())

    async def delete(self, request: Request) -> Response:
        if (denied := admin_denied(request, self.keys)) is not None:
            return denied
        if self.current is None or not self.current.running:
            return problem(409, "No rebuild running", "there is no rebuild to interrupt")
        self.current.cancel()
        return JSONResponse({"interrupted": True}, status_code=202)


def rebuild_routes(control: RebuildControl) -> list[Route]:
    return [
        Route("/admin/rebuild", control.post, methods=["POST"]),
        Route("/admin/rebuild", control.get, methods=["GET"]),
        Route("/admin/rebuild", control.delete, methods=["DELETE"]),
    ]
