"""The neo4j driver's exceptions, as the stores' error contract (`core/types.py`).

The one place that knows them: everything `Neo4jGraphStore` and its
generations do runs inside `mapped()`. What is not a store failure (a Cypher
syntax error is a bug in our statements, a misused driver is a bug in our
code) is not mapped: it propagates as it is, loudly."""

from __future__ import annotations

from contextlib import AbstractContextManager

from neo4j.exceptions import (
    AuthError,
    ClientError,
    CypherSyntaxError,
    DatabaseError,
    Forbidden,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from core.types import StoreError, StoreRejected, StoreUnavailable
from sinks.errors import from_os_error, mapped_by, needs_operator

STORE = "neo4j"

# The server is down, restarting, or failed this transaction for reasons of its
# own (a deadlock, a leader switch, an internal error): a later try can pass.
UNAVAILABLE: tuple[type[Exception], ...] = (
    ServiceUnavailable,  # includes IncompleteCommit: the write is replayed, idempotent
    SessionExpired,
    TransientError,
    DatabaseError,
)


def store_error(exc: Exception) -> StoreError | None:
    """The contract's error for `exc`, or None when it is no store failure."""
    if isinstance(exc, UNAVAILABLE):
        return StoreUnavailable(STORE, str(exc) or type(exc).__name__)
    if isinstance(exc, AuthError):
        return needs_operator(STORE, str(exc), "credentials")
    if isinstance(exc, Forbidden):
        return needs_operator(STORE, str(exc), "permission")
    if isinstance(exc, CypherSyntaxError):
        return None  # our statement is wrong: a bug, not the data
    if isinstance(exc, ClientError):
        return StoreRejected(STORE, str(exc))  # e.g. a constraint or a property type
    if isinstance(exc, OSError):  # TimeoutError and ConnectionError included
        return from_os_error(STORE, exc)
    return None


def mapped() -> AbstractContextManager[None]:
    """Raise the contract's error (chained to the library's) for a store failure."""
    return mapped_by(store_error)
