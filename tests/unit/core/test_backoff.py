"""Backoff and wait_out (core/backoff.py)."""

from __future__ import annotations

import pytest

from core.backoff import Backoff, Dependency, wait_out


class Gauge:
    def __init__(self) -> None:
        self.values: list[float] = []

    def set(self, value: float) -> None:
        self.values.append(value)


def test_each_delay_is_jittered_under_a_growing_capped_bound() -> None:
    backoff = Backoff(initial_s=1.0, maximum_s=4.0, factor=2.0)
    for attempt, bound in [(0, 1.0), (1, 2.0), (2, 4.0), (5, 4.0)]:
        delays = [backoff.delay(attempt) for _ in range(50)]
        assert all(bound / 2 <= d <= bound for d in delays)


async def test_wait_out_retries_what_is_down_and_raises_the_rest() -> None:
    gauge, failures = Gauge(), [ConnectionError("down"), ConnectionError("down")]

    async def attempt() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    dependency = Dependency("dep", "stage", gauge, "down", "back")
    fast = Backoff(initial_s=0.001, maximum_s=0.002)
    down = lambda exc: isinstance(exc, ConnectionError)  # noqa: E731
    assert await wait_out(dependency, attempt, down, fast) == "done"
    assert gauge.values == [0, 0, 1]

    async def broken() -> str:
        raise TypeError("a bug")

    with pytest.raises(TypeError):
        await wait_out(dependency, broken, down, fast)
