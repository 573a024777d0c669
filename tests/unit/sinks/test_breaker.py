"""The sink breaker (sinks/breaker.py) counts a store that is down or blocked,
never refused data nor a bug."""

from __future__ import annotations

import pybreaker
import pytest

from core.types import StoreNeedsOperator, StoreRejected, StoreUnavailable
from sinks.breaker import sink_breaker


def fail(breaker: pybreaker.CircuitBreaker, error: Exception, times: int) -> None:
    for _ in range(times):
        with pytest.raises(type(error)), breaker.calling():
            raise error


@pytest.mark.parametrize(
    "error",
    [StoreUnavailable("qdrant", "down"), StoreNeedsOperator("qdrant", "full", "disk_full")],
)
def test_a_store_down_or_blocked_opens_the_breaker(error: Exception) -> None:
    breaker = sink_breaker(f"breaker-{type(error).__name__}", fail_max=2, reset_timeout_s=60)
    fail(breaker, error, 2)
    assert breaker.current_state == pybreaker.STATE_OPEN
    with pytest.raises(pybreaker.CircuitBreakerError), breaker.calling():
        pass


@pytest.mark.parametrize(
    "error", [StoreRejected("qdrant", "bad vector"), TypeError("a bug"), ConnectionError("raw")]
)
def test_anything_else_never_counts(error: Exception) -> None:
    breaker = sink_breaker(f"breaker-not-{type(error).__name__}", fail_max=2, reset_timeout_s=60)
    fail(breaker, error, 5)
    assert breaker.current_state == pybreaker.STATE_CLOSED
