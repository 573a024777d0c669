"""API keys: `Authorization: Bearer <key>` or `X-API-Key: <key>`, compared in
constant time against every configured key."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import problem


def presented_key(request: Request) -> str:
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key", "").strip()


def key_is_valid(presented: str, keys: frozenset[str]) -> bool:
    valid = False
    for key in keys:
        # No early exit: the time taken does not say which key came close.
        valid |= hmac.compare_digest(presented.encode(), key.encode())
    return valid and bool(presented)


def unauthorized(detail: str) -> Response:
    return problem(
        401, "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="docstream"'}
    )


class ReadKeyMiddleware:
    """With DOCSTREAM_READS_NEED_KEY, queries and document status need a key too.
    Health and metrics stay open: probes and scrapers carry no keys."""

    OPEN_PREFIXES = ("/health", "/metrics")

    def __init__(self, app: ASGIApp, keys: frozenset[str]) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("GET", "HEAD")
            and not scope["path"].startswith(self.OPEN_PREFIXES)
            and not key_is_valid(presented_key(Request(scope)), self.keys)
        ):
            response = unauthorized("reads need a valid API key on this deployment")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def admin_denied(request: Request, keys: frozenset[str]) -> Response | None:
    """Admin routes need a key whatever DOCSTREAM_READS_NEED_KEY says; with no
    key configured they are closed. None when the request may go on."""
    if not keys:
        return unauthorized("admin is disabled: no API keys are configured (DOCSTREAM_API_KEYS)")
    if not key_is_valid(presented_key(request), keys):
        return unauthorized("a valid API key is required (Authorization: Bearer … or X-API-Key)")
    return None
