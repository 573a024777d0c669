"""The Neo4j store's public methods, and the generations over them, raise only
the contract's errors for store failures, chained to the driver's; a bug of
ours is not mapped."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from neo4j.exceptions import ServiceUnavailable

from core.settings import Neo4jSettings
from core.types import StoreUnavailable, WritePlan
from sinks.neo4j.generations import GraphGenerations
from sinks.neo4j.store import Neo4jGraphStore


class FailingDriver:
    """Every statement, in any kind of transaction, raises `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def execute_query(self, *_: Any, **__: Any) -> Any:
        raise self.error

    def session(self, **_: Any) -> FailingDriver:
        return self

    async def __aenter__(self) -> FailingDriver:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def execute_write(self, *_: Any, **__: Any) -> Any:
        raise self.error

    async def run(self, *_: Any, **__: Any) -> Any:
        raise self.error

    async def close(self) -> None:
        return None


def store_failing_with(error: Exception, monkeypatch: pytest.MonkeyPatch) -> Neo4jGraphStore:
    monkeypatch.setattr(
        "sinks.neo4j.store.AsyncGraphDatabase.driver", lambda *_, **__: FailingDriver(error)
    )
    return Neo4jGraphStore(Neo4jSettings())


def every_public_call(store: Neo4jGraphStore) -> list[Callable[[], Awaitable[object]]]:
    generations = GraphGenerations(store)
    return [
        store.ensure_schema,
        store.ping,
        lambda: store.count("d"),
        lambda: store.write(WritePlan()),
        lambda: store.neighbours(["c"], 2),
        generations.state,
        generations.begin,
        lambda: generations.activate("docstream:1"),
        generations.adopt_untagged,
        lambda: generations.size("docstream:1"),
    ]


async def test_a_neo4j_that_is_not_there_is_unavailable_to_every_public_method(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = ServiceUnavailable("connection refused")
    store = store_failing_with(original, monkeypatch)
    for call in every_public_call(store):
        with pytest.raises(StoreUnavailable) as raised:
            await call()
        assert raised.value.__cause__ is original
    await store.close()


async def test_a_bug_of_ours_reaches_the_caller_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    store = store_failing_with(TypeError("a bug of ours"), monkeypatch)
    for call in every_public_call(store):
        with pytest.raises(TypeError):
            await call()
    await store.close()
