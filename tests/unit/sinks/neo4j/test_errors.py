"""The neo4j driver's exceptions as the store error contract (sinks/neo4j/errors.py)."""

from __future__ import annotations

import errno

import pytest
from neo4j.exceptions import (
    AuthError,
    ClientError,
    ConstraintError,
    CypherSyntaxError,
    DatabaseError,
    Forbidden,
    IncompleteCommit,
    ResultConsumedError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from core.types import StoreNeedsOperator, StoreRejected, StoreUnavailable
from sinks.neo4j.errors import mapped, store_error


@pytest.mark.parametrize(
    "exc",
    [
        ServiceUnavailable("connection refused"),
        IncompleteCommit("lost during commit"),
        SessionExpired("leader changed"),
        TransientError("deadlock"),
        DatabaseError("internal"),
        TimeoutError("no answer"),
    ],
)
def test_a_store_that_is_not_there_is_unavailable(exc: Exception) -> None:
    error = store_error(exc)
    assert type(error) is StoreUnavailable
    assert error.store == "neo4j"


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (AuthError("bad password"), "credentials"),
        (Forbidden("no write"), "permission"),
        (PermissionError(errno.EACCES, "denied"), "permission"),
    ],
)
def test_what_only_the_operator_can_fix_needs_the_operator(exc: Exception, reason: str) -> None:
    error = store_error(exc)
    assert isinstance(error, StoreNeedsOperator) and error.reason == reason


@pytest.mark.parametrize("exc", [ClientError("bad property"), ConstraintError("not unique")])
def test_a_refused_statement_is_rejected(exc: Exception) -> None:
    assert type(store_error(exc)) is StoreRejected


@pytest.mark.parametrize(
    "exc",
    [CypherSyntaxError("our statement"), ResultConsumedError(None, "misused"), TypeError("bug")],
)
def test_our_own_bugs_are_not_mapped(exc: Exception) -> None:
    assert store_error(exc) is None
    with pytest.raises(type(exc)), mapped():
        raise exc


def test_mapped_chains_the_drivers_exception() -> None:
    original = ServiceUnavailable("down")
    with pytest.raises(StoreUnavailable) as raised, mapped():
        raise original
    assert raised.value.__cause__ is original


def _caused(outer: Exception, cause: BaseException) -> Exception:
    outer.__cause__ = cause
    return outer


def test_an_untrusted_certificate_needs_the_operator_and_names_the_ca_setting() -> None:
    import ssl

    from neo4j.exceptions import ServiceUnavailable

    verify = ssl.SSLCertVerificationError(1, "certificate verify failed: unable to get issuer")
    error = store_error(
        _caused(ServiceUnavailable("Failed to establish encrypted connection"), verify)
    )
    assert isinstance(error, StoreNeedsOperator) and error.reason == "tls"
    assert "NEO4J_CA_FILE" in str(error)


def test_a_server_that_wants_tls_or_does_not_speak_it_is_told_apart() -> None:
    import ssl

    from neo4j.exceptions import ServiceUnavailable

    wants = store_error(
        ServiceUnavailable("Connection to x closed with incomplete handshake response")
    )
    assert isinstance(wants, StoreNeedsOperator) and "requires TLS" in str(wants)
    plain = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    error = store_error(
        _caused(ServiceUnavailable("Failed to establish encrypted connection"), plain)
    )
    assert isinstance(error, StoreNeedsOperator) and "does not speak TLS" in str(error)
    assert isinstance(store_error(ServiceUnavailable("Couldn't connect")), StoreUnavailable)


def test_refused_credentials_name_the_settings() -> None:
    from neo4j.exceptions import AuthError

    error = store_error(AuthError("The client is unauthorized due to authentication failure."))
    assert isinstance(error, StoreNeedsOperator) and error.reason == "credentials"
    assert "NEO4J_PASSWORD" in str(error)
