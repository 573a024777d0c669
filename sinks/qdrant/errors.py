"""qdrant-client's, httpx's and Qdrant Edge's exceptions, as the stores' error
contract (`core/types.py`): the one place that knows them, for both Qdrant
stores (`server.py` and `edge.py` run every call inside `mapped()`).

What is not a store failure (a TypeError from our own code, a misused client)
is not mapped: it propagates as it is, loudly."""

from __future__ import annotations

import re
from contextlib import AbstractContextManager

import httpx
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from core.types import StoreError, StoreRejected, StoreUnavailable
from sinks.errors import from_errno, from_os_error, mapped_by, needs_operator, tls_failure

STORE = "qdrant"
# What to fix, by the reason a server refused us (the generic remedy otherwise).
FIXES = {
    "credentials": "check QDRANT_API_KEY (or QDRANT_API_KEY_FILE)",
    "tls": "the server's certificate is not trusted: set QDRANT_CA_FILE to the CA that signed it",
}
NOT_TLS = "the server does not speak TLS on that port: use an http:// QDRANT_URL"
# HTTP statuses of a server that is overloaded, restarting or behind a proxy
# that lost it: a later try can pass.
UNAVAILABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
NEEDS_OPERATOR_STATUS = {
    401: "credentials",
    403: "permission",
    404: "missing_collection",
    507: "disk_full",
}
# Qdrant Edge raises a bare `Exception` whose text is the engine's error; an
# I/O failure ends with the OS error number (Rust's io::Error: "(os error 28)").
_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def store_error(exc: Exception) -> StoreError | None:
    """The contract's error for `exc`, or None when it is no store failure."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, UnexpectedResponse):
        return _from_status(exc.status_code, detail)
    if isinstance(exc, ResponseHandlingException | httpx.TransportError):
        failure = tls_failure(exc)
        if failure is not None:  # no retry makes a certificate trusted
            wrong = "WRONG_VERSION_NUMBER" in str(failure).upper()
            return needs_operator(STORE, detail, "tls", NOT_TLS if wrong else FIXES["tls"])
        return StoreUnavailable(STORE, detail)  # no answer: refused, reset, timed out
    if isinstance(exc, OSError):
        return from_os_error(STORE, exc)
    if type(exc) is Exception:  # Qdrant Edge's only error type
        return _from_edge(detail)
    return None


def _from_status(status: int | None, detail: str) -> StoreError:
    if status is None or status in UNAVAILABLE_STATUS:
        return StoreUnavailable(STORE, detail)
    if status in NEEDS_OPERATOR_STATUS:
        reason = NEEDS_OPERATOR_STATUS[status]
        return needs_operator(STORE, detail, reason, FIXES.get(reason))
    return StoreRejected(STORE, detail)  # 400, 422…: the request's content


def _from_edge(detail: str) -> StoreError:
    """An I/O failure by its errno; anything else the engine refused (a vector of
    the wrong dimension, a bad filter) is a refusal of what was sent."""
    found = _OS_ERROR.search(detail)
    if found:
        return from_errno(STORE, int(found.group(1)), detail)
    return StoreRejected(STORE, detail)


def mapped() -> AbstractContextManager[None]:
    """Raise the contract's error (chained to the library's) for a store failure."""
    return mapped_by(store_error)
