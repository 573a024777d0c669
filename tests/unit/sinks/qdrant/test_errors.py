"""qdrant-client's, httpx's and Qdrant Edge's exceptions as the store error
contract (sinks/qdrant/errors.py)."""

from __future__ import annotations

import errno

import httpx
import pytest
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from core.types import StoreNeedsOperator, StoreRejected, StoreUnavailable
from sinks.qdrant.errors import mapped, store_error


def response(status: int) -> UnexpectedResponse:
    return UnexpectedResponse(status, "reason", b'{"status": "error"}', httpx.Headers())


@pytest.mark.parametrize(
    "exc",
    [
        response(503),
        response(502),
        response(429),
        ResponseHandlingException(httpx.ConnectError("refused")),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
    ],
)
def test_a_server_that_is_not_there_is_unavailable(exc: Exception) -> None:
    error = store_error(exc)
    assert type(error) is StoreUnavailable
    assert error.store == "qdrant"


@pytest.mark.parametrize("status", [400, 422])
def test_a_request_the_server_refuses_is_rejected(status: int) -> None:
    assert type(store_error(response(status))) is StoreRejected


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (response(401), "credentials"),
        (response(403), "permission"),
        (response(404), "missing_collection"),
        (response(507), "disk_full"),
        (PermissionError(errno.EACCES, "denied"), "permission"),
        (OSError(errno.ENOSPC, "No space left on device"), "disk_full"),
        (OSError(errno.EROFS, "Read-only file system"), "read_only"),
        # Qdrant Edge's own errors: a bare Exception ending in Rust's io::Error.
        (Exception("Service runtime error: write failed: Permission denied (os error 13)"),
         "permission"),
        (Exception("Service internal error: No space left on device (os error 28)"), "disk_full"),
    ],
)  # fmt: skip
def test_what_only_the_operator_can_fix_needs_the_operator(exc: Exception, reason: str) -> None:
    error = store_error(exc)
    assert isinstance(error, StoreNeedsOperator) and error.reason == reason


def test_an_edge_refusal_of_what_was_sent_is_rejected() -> None:
    error = store_error(Exception("Vector dimension error: expected dim: 4, got 2"))
    assert type(error) is StoreRejected


@pytest.mark.parametrize("exc", [TypeError("bug"), KeyError("bug"), ValueError("ours")])
def test_our_own_bugs_are_not_mapped(exc: Exception) -> None:
    assert store_error(exc) is None
    with pytest.raises(type(exc)), mapped():
        raise exc


def test_mapped_chains_the_librarys_exception() -> None:
    original = response(503)
    with pytest.raises(StoreUnavailable) as raised, mapped():
        raise original
    assert raised.value.__cause__ is original


def test_an_untrusted_certificate_needs_the_operator_and_names_the_ca_setting() -> None:
    import ssl

    connect = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    connect.__cause__ = ssl.SSLCertVerificationError(1, "certificate verify failed")
    wrapped = ResponseHandlingException(connect)
    wrapped.__cause__ = connect
    error = store_error(wrapped)
    assert isinstance(error, StoreNeedsOperator) and error.reason == "tls"
    assert "QDRANT_CA_FILE" in str(error)


def test_a_refused_api_key_names_its_setting() -> None:
    error = store_error(
        UnexpectedResponse(401, "Unauthorized", b"Invalid API key or JWT", httpx.Headers())
    )
    assert isinstance(error, StoreNeedsOperator) and error.reason == "credentials"
    assert "QDRANT_API_KEY" in str(error)
