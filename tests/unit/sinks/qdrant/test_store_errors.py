"""The Qdrant stores' public methods raise only the contract's errors for
store failures, chained to the original, and let our own bugs through."""

from __future__ import annotations

import errno
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from core.settings import QdrantSettings
from core.types import IndexedChunk, StoreNeedsOperator, StoreUnavailable, WritePlan
from sinks.qdrant.edge import EdgeVectorStore
from sinks.qdrant.generations import QdrantGenerations
from sinks.qdrant.server import QdrantVectorStore


def chunk() -> IndexedChunk:
    return IndexedChunk("c1", "d1", 1, 0, 1, "title", "text", [1.0, 0.0, 0.0], "corr")


async def test_an_edge_store_it_may_not_write_needs_the_operator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root ignores file permissions, so the refusal is fabricated where the
    store names its live generation (the pointer file's rename)."""

    def refuse(*_: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("sinks.qdrant.edge.os.replace", refuse)
    store = EdgeVectorStore(QdrantSettings(path=tmp_path), dimension=3)
    with pytest.raises(StoreNeedsOperator) as raised:
        await store.ensure_schema()
    assert raised.value.reason == "permission"
    assert isinstance(raised.value.__cause__, PermissionError)
    await store.close()


async def test_an_edge_write_on_a_full_disk_needs_the_operator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EdgeVectorStore(QdrantSettings(path=tmp_path), dimension=3)
    await store.ensure_schema()

    def full(*_: object) -> None:  # the engine's own error: a bare Exception
        raise Exception("Service internal error: No space left on device (os error 28)")

    monkeypatch.setattr(EdgeVectorStore, "_point", full)
    with pytest.raises(StoreNeedsOperator) as raised:
        await store.write(WritePlan(upserts=[chunk()], chunk_counts={"d1": 1}))
    assert raised.value.reason == "disk_full"
    await store.close()


async def test_a_bug_in_our_own_code_is_not_a_store_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EdgeVectorStore(QdrantSettings(path=tmp_path), dimension=3)
    await store.ensure_schema()

    def broken(*_: object) -> None:
        raise TypeError("a bug of ours")

    monkeypatch.setattr(EdgeVectorStore, "_point", broken)
    with pytest.raises(TypeError):
        await store.write(WritePlan(upserts=[chunk()], chunk_counts={"d1": 1}))
    await store.close()


class DownClient:
    """A qdrant-client whose every call fails the way a server that is down does."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Callable[..., None]:
        def call(*_: object, **__: object) -> None:
            raise self.error

        return call


@pytest.mark.parametrize(
    "error",
    [
        UnexpectedResponse(503, "Service Unavailable", b"", httpx.Headers()),
        ResponseHandlingException(httpx.ConnectError("connection refused")),
    ],
)
async def test_a_qdrant_server_that_is_down_is_unavailable_to_every_public_method(
    tmp_path: Path, error: Exception
) -> None:
    store = QdrantVectorStore(QdrantSettings(path=tmp_path), dimension=3)
    store.client = DownClient(error)  # type: ignore[assignment]
    generations = QdrantGenerations(store)
    calls: list[Callable[[], Awaitable[object]]] = [
        store.ensure_schema,
        store.ping,
        lambda: store.count("d"),
        lambda: store.write(WritePlan(upserts=[chunk()], chunk_counts={"d1": 1})),
        lambda: store.search([1.0, 0.0, 0.0], 3),
        lambda: store.search_lexical("text", 3),
        generations.state,
        generations.begin,
        lambda: generations.activate("docstream_chunks-g1"),
        lambda: generations.size("docstream_chunks-g1"),
        store.close,
    ]
    for call in calls:
        with pytest.raises(StoreUnavailable) as raised:
            await call()
        assert raised.value.__cause__ is error
