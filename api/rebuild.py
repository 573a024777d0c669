"""/admin/rebuild and /admin/replay: start, follow and interrupt an index job
(a rebuild, a repair or a replay) inside the worker, one at a time.

The worker owns the stores (an embedded Qdrant can be opened by one process
only), so `docstream rebuild` and `docstream replay` ask the worker's API:

    POST   /admin/rebuild {"target": "qdrant" | "neo4j" | "all",
                           "from_offset": "1200" | "0:1200,1:1180",   (a repair,
                           "from_time": "2026-11-22T10:00:00Z"}        either one)
    POST   /admin/replay  {"topic": "documents", "model": …,
                           "max_tokens": …, "overlap_tokens": …}
                                                 202, 409 if a job runs, 422 if invalid
    GET    /admin/rebuild | /admin/replay        the current job's progress
    DELETE /admin/rebuild | /admin/replay        interrupt it (resumable)
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.auth import admin_denied
from api.problems import problem
from core.positions import StartAt, parse_start
from core.types import ReplayRequest

TARGETS = ("qdrant", "neo4j", "all")
REPLAY_TOPICS = ("documents",)
JOB_PATHS = ("/admin/rebuild", "/admin/replay")
# A model's name or the path of its folder (absolute, or relative to the
# worker's directory); nothing a shell or a URL would read twice.
MODEL_PATTERN = r"^/?[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$"
MAX_CHUNK_TOKENS = 8192  # far beyond any model's window; the chunker caps it lower


class RebuildRun(Protocol):
    """What the routes need of a running job (ops/jobs/rebuild.py's Rebuild,
    ops/jobs/replay.py's Replay)."""

    @property
    def running(self) -> bool: ...

    def cancel(self) -> None: ...

    def report(self) -> dict[str, Any]: ...


StartRebuild = Callable[[str, StartAt | None], RebuildRun]
# Raises ValueError when the profile cannot be made (its reason becomes a 422).
StartReplay = Callable[[ReplayRequest], Awaitable[RebuildRun]]


class InvalidField(ValueError):
    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field


class RebuildControl:
    def __init__(
        self, start: StartRebuild, keys: frozenset[str], replay: StartReplay | None = None
    ) -> None:
        self.start = start  # target, start point → a started rebuild
        self.replay = replay  # profile → a started replay
        self.keys = keys
        self.current: RebuildRun | None = None

    async def post(self, request: Request) -> Response:
        return await self._start(request, self._rebuild)

    async def post_replay(self, request: Request) -> Response:
        return await self._start(request, self._replay)

    async def _start(
        self, request: Request, start: Callable[[dict[str, Any]], Awaitable[RebuildRun]]
    ) -> Response:
        if (denied := admin_denied(request, self.keys)) is not None:
            return denied
        try:
            body = await request.json() if await request.body() else {}
        except ValueError:
            return problem(422, "Invalid JSON", "the body is not valid JSON", field="body")
        if not isinstance(body, dict):
            return problem(422, "Invalid body", "the body must be a JSON object", field="body")
        if self.current is not None and self.current.running:
            return problem(409, "Job running", "a rebuild or replay is already running")
        try:
            self.current = await start(body)
        except InvalidField as exc:
            return problem(422, "Invalid request", str(exc), field=exc.field)
        return JSONResponse(self.current.report(), status_code=202)

    async def _rebuild(self, body: dict[str, Any]) -> RebuildRun:
        target = body.get("target", "all")
        if target not in TARGETS:
            raise InvalidField("target", f"target must be one of {', '.join(TARGETS)}")
        from_offset, from_time = _text(body, "from_offset"), _text(body, "from_time")
        try:
            at = parse_start(from_offset, from_time)
        except ValueError as exc:
            field = "from_time" if from_time else "from_offset"
            raise InvalidField(field, str(exc)) from None
        return self.start(target, at)

    async def _replay(self, body: dict[str, Any]) -> RebuildRun:
        if self.replay is None:
            raise InvalidField("topic", "this worker cannot replay")
        topic = body.get("topic", "documents")
        if topic not in REPLAY_TOPICS:
            raise InvalidField(
                "topic",
                f"topic must be one of {', '.join(REPLAY_TOPICS)} (chunks.embedded: rebuild)",
            )
        model = _text(body, "model")
        if model is not None and not re.match(MODEL_PATTERN, model):
            raise InvalidField("model", "model must be a model's name or folder")
        request = ReplayRequest(
            topic, model, _count(body, "max_tokens"), _count(body, "overlap_tokens")
        )
        try:
            return await self.replay(request)
        except ValueError as exc:
            raise InvalidField("model" if request.model else "max_tokens", str(exc)) from exc

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
            return problem(409, "No job running", "there is no rebuild or replay to interrupt")
        self.current.cancel()
        return JSONResponse({"interrupted": True}, status_code=202)


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidField(name, f"{name} must be a string")
    return str(value)


def _count(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_CHUNK_TOKENS:
        raise InvalidField(name, f"{name} must be a whole number from 0 to {MAX_CHUNK_TOKENS}")
    return value


def rebuild_routes(control: RebuildControl) -> list[Route]:
    return [
        Route("/admin/rebuild", control.post, methods=["POST"]),
        Route("/admin/replay", control.post_replay, methods=["POST"]),
        *(Route(path, control.get, methods=["GET"]) for path in JOB_PATHS),
        *(Route(path, control.delete, methods=["DELETE"]) for path in JOB_PATHS),
    ]
