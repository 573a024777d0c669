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
from sinks.errors import from_os_error, mapped_by, needs_operator, tls_failure

STORE = "neo4j"
CREDENTIALS = "check NEO4J_USER and NEO4J_PASSWORD (or NEO4J_PASSWORD_FILE)"
UNTRUSTED = (
    "the server's certificate is not trusted: set NEO4J_CA_FILE to the CA that signed it "
    "(with a bolt:// or neo4j:// URI), or use neo4j+s:// where the system's CAs trust it"
)
NOT_TLS = (
    "the server does not speak TLS on that port: use bolt:// or neo4j:// without NEO4J_CA_FILE"
)
WANTS_TLS = (
    "the server closed the connection during the Bolt handshake: it requires TLS: use "
    "neo4j+s:// or set NEO4J_CA_FILE (or NEO4J_URI names a port that is not Bolt)"
)

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
    if isinstance(exc, ServiceUnavailable) and (tls := tls_problem(exc)) is not None:
        return needs_operator(STORE, str(exc) or type(exc).__name__, "tls", tls)
    if isinstance(exc, UNAVAILABLE):
        return StoreUnavailable(STORE, str(exc) or type(exc).__name__)
    if isinstance(exc, AuthError):
        return needs_operator(STORE, str(exc), "credentials", CREDENTIALS)
    if isinstance(exc, Forbidden):
        return needs_operator(STORE, str(exc), "permission")
    if isinstance(exc, CypherSyntaxError):
        return None  # our statement is wrong: a bug, not the data
    if isinstance(exc, ClientError):
        return StoreRejected(STORE, str(exc))  # e.g. a constraint or a property type
    if isinstance(exc, OSError):  # TimeoutError and ConnectionError included
        return from_os_error(STORE, exc)
    return None


def tls_problem(exc: ServiceUnavailable) -> str | None:
    """What to fix when a connection failed on TLS, not on an outage: no retry
    makes a certificate trusted or a plaintext server speak TLS."""
    failure = tls_failure(exc)
    if failure is not None:
        return NOT_TLS if "WRONG_VERSION_NUMBER" in str(failure).upper() else UNTRUSTED
    if "incomplete handshake" in str(exc):
        return WANTS_TLS
    return None


def mapped() -> AbstractContextManager[None]:
    """Raise the contract's error (chained to the library's) for a store failure."""
    return mapped_by(store_error)
