"""Errors as RFC 9457 problem documents. They say what was wrong with the
request, never a host, a secret or a stack trace."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


def problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


class FieldError(ValueError):
    """A field of a request is missing or wrong; answered with 422 naming it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
