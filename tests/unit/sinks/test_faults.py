"""The Qdrant write-fault hook of the fault suite: off without its env var,
and when on, writes fail as an outage (transient, so back-pressure, never a
dead letter) exactly while the flag file exists; reads always pass through."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from core.types import Hit, SearchFilter, WritePlan
from sinks.breaker import sink_breaker
from sinks.faults import (
    FAULT_QDRANT_WRITES,
    FaultyVectorStore,
    InjectedStoreUnavailable,
    with_injected_faults,
)
from sinks.retry import is_store_down


class FakeStore:
    def __init__(self) -> None:
        self.writes: list[WritePlan] = []

    async def ensure_schema(self) -> None:
        pass

    async def write(self, plan: WritePlan) -> None:
        self.writes.append(plan)

    async def search(
        self, vector: Sequence[float], limit: int, where: SearchFilter | None = None
    ) -> list[Hit]:
        return [Hit("c", "d", 0, "text", 1.0, "", "dense")]

    async def search_lexical(
        self, text: str, limit: int, where: SearchFilter | None = None
    ) -> list[Hit]:
        return []

    async def count(self, doc_id: str, version: int | None = None) -> int:
        return 7

    async def ping(self) -> None:
        pass

    async def close(self) -> None:
        pass


def test_without_the_env_var_the_store_is_returned_as_is() -> None:
    store = FakeStore()
    assert with_injected_faults(store, {}) is store
    assert with_injected_faults(store, {FAULT_QDRANT_WRITES: " "}) is store


def test_with_the_env_var_the_store_is_wrapped_and_it_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrapped = with_injected_faults(FakeStore(), {FAULT_QDRANT_WRITES: str(tmp_path / "flag")})
    assert isinstance(wrapped, FaultyVectorStore)
    assert "FAULT INJECTION ENABLED" in caplog.text


async def test_writes_fail_only_while_the_flag_exists(tmp_path: Path) -> None:
    store, flag = FakeStore(), tmp_path / "flag"
    faulty = FaultyVectorStore(store, flag)
    await faulty.write(WritePlan())
    flag.touch()
    with pytest.raises(InjectedStoreUnavailable):
        await faulty.write(WritePlan())
    flag.unlink()
    await faulty.write(WritePlan())
    assert len(store.writes) == 2


async def test_reads_pass_through_during_the_fault(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    flag.touch()
    faulty = FaultyVectorStore(FakeStore(), flag)
    assert [h.chunk_id for h in await faulty.search([0.0], 1)] == ["c"]
    assert await faulty.count("d") == 7
    await faulty.ping()


def test_the_injected_error_is_an_outage_for_retry_and_breaker() -> None:
    error = InjectedStoreUnavailable("qdrant", "down")
    assert is_store_down(error)
    breaker = sink_breaker("fault-test", fail_max=2)
    for _ in range(2):
        with pytest.raises(InjectedStoreUnavailable), breaker.calling():
            raise error
    assert breaker.current_state == "open", "injected outages count towards opening"
