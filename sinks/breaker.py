"""One circuit breaker per sink (pybreaker). After `fail_max` consecutive
failures of a store that is down or blocked (`StoreUnavailable`,
`StoreNeedsOperator`), the breaker opens: writes fail fast for
`reset_timeout_s`, then one trial write decides whether it closes again.
Anything else never counts: a refused chunk (`StoreRejected`) or a bug says
nothing about whether the store is up."""

from __future__ import annotations

import pybreaker

from core.logs import get_logger
from core.metrics import BREAKER_OPEN, BREAKER_TRANSITIONS
from sinks.retry import is_store_down

log = get_logger(__name__)


class _Observer(pybreaker.CircuitBreakerListener):
    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        name = str(cb.name)
        BREAKER_OPEN.labels(name).set(1 if new_state.name == pybreaker.STATE_OPEN else 0)
        BREAKER_TRANSITIONS.labels(name, new_state.name).inc()
        log.warning(
            "breaker state changed",
            extra={
                "sink": name,
                "from": old_state.name if old_state else None,
                "to": new_state.name,
            },
        )


def sink_breaker(
    name: str, fail_max: int = 3, reset_timeout_s: float = 10.0
) -> pybreaker.CircuitBreaker:
    BREAKER_OPEN.labels(name).set(0)
    return pybreaker.CircuitBreaker(
        fail_max=fail_max,
        reset_timeout=reset_timeout_s,
        exclude=[lambda exc: not is_store_down(exc)],
        listeners=[_Observer()],
        throw_new_error_on_trip=False,
        name=name,
    )
