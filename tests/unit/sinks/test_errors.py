"""OS errors by errno (sinks/errors.py): what lasts needs the operator, a broken
connection is an outage, and the mapping keeps the original chained."""

from __future__ import annotations

import errno

import pytest

from core.types import StoreError, StoreNeedsOperator, StoreUnavailable
from sinks.errors import from_errno, from_os_error, mapped_by


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        (errno.EACCES, "permission"),
        (errno.EPERM, "permission"),
        (errno.EROFS, "read_only"),
        (errno.ENOSPC, "disk_full"),
        (errno.EDQUOT, "disk_full"),
    ],
)
def test_a_lasting_os_error_needs_the_operator_with_its_reason(number: int, reason: str) -> None:
    error = from_os_error("qdrant", OSError(number, "nope"))
    assert isinstance(error, StoreNeedsOperator)
    assert error.reason == reason
    assert error.store == "qdrant"
    assert reason in str(error) and "nope" in str(error)


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
        ConnectionResetError(errno.ECONNRESET, "reset"),
        TimeoutError("no answer"),
        ConnectionError("gone"),
    ],
)
def test_a_connection_that_fails_is_an_outage(exc: OSError) -> None:
    error = from_os_error("neo4j", exc)
    assert type(error) is StoreUnavailable


def test_an_unknown_errno_still_tells_the_operator() -> None:
    error = from_errno("qdrant", errno.ENOTDIR, "not a directory")
    assert isinstance(error, StoreNeedsOperator) and error.reason == "os_error"


def test_mapped_by_chains_store_failures_and_lets_bugs_through() -> None:
    def only_os(exc: Exception) -> StoreError | None:
        return from_os_error("s", exc) if isinstance(exc, OSError) else None

    with pytest.raises(StoreNeedsOperator) as raised, mapped_by(only_os):
        raise PermissionError(errno.EACCES, "denied")
    assert isinstance(raised.value.__cause__, PermissionError)
    with pytest.raises(TypeError), mapped_by(only_os):
        raise TypeError("a bug of ours")
    already = StoreUnavailable("s", "down")
    with pytest.raises(StoreUnavailable) as passed, mapped_by(only_os):
        raise already
    assert passed.value is already
