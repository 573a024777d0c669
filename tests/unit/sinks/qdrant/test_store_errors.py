"""The Qdrant stores' public methods raise only the contract's errors for
store failures, chained to the original, and let our own bugs through."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from core.settings import QdrantSettings
from core.types import IndexedChunk, StoreNeedsOperator, StoreUnavailable, WritePlan
from sinks.qdrant.edge import EdgeVectorStore
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


@pytest.mark.filterwarnings("ignore:Failed to obtain server version")
async def test_a_qdrant_server_nobody_answers_for_is_unavailable() -> None:
    store = QdrantVectorStore(QdrantSettings(url="http://127.0.0.1:1"), dimension=3)
    with pytest.raises(StoreUnavailable) as raised:
        await store.ping()
    assert raised.value.__cause__ is not None
    await store.close()
