"""Writing to a store until it takes the write: the line between a store that
is down or blocked (wait, hold the stream: back-pressure) and anything else
(raised for the caller). Decided on the stores' error contract alone
(`core/types.py`); each adapter maps its library's exceptions to it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import pybreaker

from core.backoff import Backoff, Dependency, wait_out
from core.logs import get_logger
from core.metrics import SINK_BLOCKED, SINK_UP
from core.types import StoreNeedsOperator, StoreUnavailable
from sinks.errors import remedy

log = get_logger(__name__)
T = TypeVar("T")

# Failures that say "the store cannot take writes now", not "this data is wrong".
STORE_DOWN: tuple[type[Exception], ...] = (StoreUnavailable, StoreNeedsOperator)


def is_store_down(exc: BaseException) -> bool:
    return isinstance(exc, STORE_DOWN)


class _Blocked:
    """The `docstream_sink_blocked` gauge of one sink: 1 for the reason it waits
    on the operator for, 0 for any reason it waited on before."""

    def __init__(self, sink: str) -> None:
        self.sink = sink
        self.reasons: set[str] = set()

    def set(self, reason: str | None) -> None:
        for earlier in self.reasons - {reason}:
            SINK_BLOCKED.labels(self.sink, earlier).set(0)
        self.reasons = set() if reason is None else {reason}
        if reason is not None:
            SINK_BLOCKED.labels(self.sink, reason).set(1)


async def until_written(
    sink: str,
    write: Callable[[], Awaitable[T]],
    backoff: Backoff | None = None,
    breaker: pybreaker.CircuitBreaker | None = None,
) -> T:
    """Run `write` until it succeeds, waiting out a store that is down.

    The caller's stream does not move on meanwhile, so a store that is down
    (`StoreUnavailable`) or that needs the operator (`StoreNeedsOperator`: said
    in its own log line and in `docstream_sink_blocked`) holds its consumer
    instead of losing or dead-lettering events. Behind an open breaker the
    write is not even tried until its timeout passes. Anything else (a
    `StoreRejected`, a bug) is raised at once.
    """
    blocked = _Blocked(sink)

    async def attempt() -> T:
        if breaker is None:
            return await write()
        with breaker.calling():
            return await write()

    def is_down(exc: BaseException) -> bool:
        return is_store_down(exc) or isinstance(exc, pybreaker.CircuitBreakerError)

    def on_down(exc: BaseException, attempt: int, delay: float) -> None:
        context = {"sink": sink, "attempt": attempt, "retry_in_s": round(delay, 2)}
        if isinstance(exc, StoreNeedsOperator):
            blocked.set(exc.reason)
            log.error(
                f"sink needs the operator: {exc.reason}",
                extra={
                    **context,
                    "reason": exc.reason,
                    "remedy": remedy(exc.reason),
                    "error": str(exc),
                },
            )
            return
        if not isinstance(exc, pybreaker.CircuitBreakerError):
            blocked.set(None)  # an open breaker says nothing new about why
        log.warning("sink unavailable, retrying", extra={**context, "error": repr(exc)})

    store = Dependency(sink, "sink", SINK_UP.labels(sink), "sink unavailable", "sink back")
    return await wait_out(
        store, attempt, is_down, backoff, on_down=on_down, on_back=lambda: blocked.set(None)
    )
