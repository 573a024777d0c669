"""API keys: `Authorization: Bearer <key>` or `X-API-Key: <key>`, compared in
constant time against every configured key."""

from __future__ import annotations

import hmac

from starlette.requests import Request


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
