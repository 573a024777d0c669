"""until_written (sinks/retry.py): waits out a store that is down or blocked,
says a blocked one distinctly (log line and gauge), and raises anything else at once."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pybreaker
import pytest
from prometheus_client import REGISTRY

from core.backoff import Backoff
from core.types import StoreNeedsOperator, StoreRejected, StoreUnavailable
from sinks.breaker import sink_breaker
from sinks.errors import needs_operator
from sinks.retry import until_written

FAST = Backoff(initial_s=0.001, maximum_s=0.002)


def blocked(sink: str, reason: str) -> float | None:
    return REGISTRY.get_sample_value("docstream_sink_blocked", {"sink": sink, "reason": reason})


def sink_up(sink: str) -> float | None:
    return REGISTRY.get_sample_value("docstream_sink_up", {"sink": sink})


class Flaky:
    """Raises each of `failures` in turn, then writes; records what it saw meanwhile."""

    def __init__(self, *failures: Exception, probe: Callable[[], object] = lambda: None) -> None:
        self.failures = list(failures)
        self.calls = 0
        self.probe = probe
        self.seen: list[object] = []

    async def __call__(self) -> str:
        self.calls += 1
        self.seen.append(self.probe())
        if self.failures:
            raise self.failures.pop(0)
        return "written"


async def test_an_unavailable_store_is_waited_out() -> None:
    write = Flaky(StoreUnavailable("qdrant", "down"), StoreUnavailable("qdrant", "still down"))
    assert await until_written("retry-unavailable", write, FAST) == "written"
    assert write.calls == 3
    assert sink_up("retry-unavailable") == 1


async def test_a_store_that_needs_the_operator_is_waited_out_and_said_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = "retry-blocked"
    write = Flaky(
        needs_operator("qdrant", "no space left", "disk_full"),
        needs_operator("qdrant", "no space left", "disk_full"),
        probe=lambda: (blocked(sink, "disk_full"), sink_up(sink)),
    )
    with caplog.at_level(logging.WARNING, logger="sinks.retry"):
        assert await until_written(sink, write, FAST) == "written"
    # While blocked: the gauge names the reason and the sink is down.
    assert write.seen[1:] == [(1.0, 0.0), (1.0, 0.0)]
    assert blocked(sink, "disk_full") == 0, "written again: no longer blocked"
    lines = [r for r in caplog.records if r.getMessage() == "sink needs the operator: disk_full"]
    assert len(lines) == 2 and lines[0].levelno == logging.ERROR
    assert lines[0].__dict__["remedy"].startswith("free disk space")
    assert not any(r.getMessage() == "sink unavailable, retrying" for r in caplog.records)


async def test_a_blocked_store_that_turns_unavailable_is_no_longer_blocked() -> None:
    sink = "retry-changes"
    write = Flaky(
        StoreNeedsOperator("neo4j", "denied", "permission"),
        StoreUnavailable("neo4j", "restarting"),
        probe=lambda: blocked(sink, "permission"),
    )
    await until_written(sink, write, FAST)
    assert write.seen == [None, 1.0, 0.0]


@pytest.mark.parametrize(
    "error", [StoreRejected("qdrant", "bad vector"), TypeError("a bug"), KeyError("a bug")]
)
async def test_anything_else_is_raised_at_once(error: Exception) -> None:
    write = Flaky(error)
    with pytest.raises(type(error)):
        await until_written("retry-raise", write, FAST)
    assert write.calls == 1


async def test_an_open_breaker_is_waited_out_until_its_trial_write_passes() -> None:
    breaker = sink_breaker("retry-breaker", fail_max=1, reset_timeout_s=0.01)
    write = Flaky(StoreUnavailable("qdrant", "down"))
    assert await until_written("retry-breaker", write, FAST, breaker) == "written"
    assert breaker.current_state == pybreaker.STATE_CLOSED
