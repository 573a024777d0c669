"""What only the Qdrant Edge store does, on real shards: index what was written
(optimize) and keep answering the same, reopen from disk, refuse a second
opener, and generations as shard folders behind the `.active` pointer."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

import sinks.qdrant.edge as qdrant_edge
from core.settings import QdrantSettings
from core.types import DocumentDeletion, GenerationState, IndexedChunk, SearchFilter, WritePlan
from sinks.qdrant.edge import EdgeVectorStore
from sinks.qdrant.generations import QdrantGenerations

pytestmark = pytest.mark.integration


def plan(doc: str, count: int, team: str = "a", word: str = "kettle") -> WritePlan:
    upserts = [
        IndexedChunk(
            str(uuid.uuid5(uuid.NAMESPACE_URL, f"{doc}/{index}")),
            doc,
            1,
            index,
            count,
            "T",
            f"{word} number {index}",
            [1.0, 0.0, float(index)],
            "corr",
            metadata={"team": team},
        )
        for index in range(count)
    ]
    return WritePlan(upserts=upserts, chunk_counts={doc: count})


def open_store(path: Path, collection: str = "chunks") -> EdgeVectorStore:
    return EdgeVectorStore(QdrantSettings(path=path, collection=collection), dimension=3)


async def test_optimized_segments_answer_as_before_and_survive_a_reopen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Index every segment, and optimize after every few points.
    monkeypatch.setattr(qdrant_edge, "INDEXING_THRESHOLD_KB", 1)
    monkeypatch.setattr(qdrant_edge, "OPTIMIZE_AFTER", 5)
    store = open_store(tmp_path)
    await store.ensure_schema()
    for doc in range(40):
        await store.write(plan(f"d{doc}", 8, team="b" if doc % 2 else "a"))
    await store.write(plan("d1", 1, team="b"))  # a shorter version: seven orphans
    await store.write(WritePlan(deletions=[DocumentDeletion("d2", 2, "corr")]))
    await store.optimize()
    info = await store.info()
    assert info["indexed_vectors"] > info["points"], "dense vectors are in an HNSW index"

    async def observed() -> tuple[object, ...]:
        team_b = SearchFilter(metadata=(("team", "b"),))
        dense = await store.search([1.0, 0.0, 0.0], 200, team_b)
        lexical = await store.search_lexical("kettles", 50, SearchFilter(doc_ids=("d1", "d3")))
        return (
            await store.count("d1"),
            await store.count("d2"),
            await store.count("d3", version=1),
            sorted({h.doc_id for h in dense}),
            len(dense),
            sorted(h.chunk_id for h in lexical),
        )

    before = await observed()
    assert before[:3] == (1, 0, 8)
    assert before[3] == sorted(f"d{n}" for n in range(1, 40, 2))
    assert before[4] == 1 + 19 * 8
    assert len(before[5]) == 1 + 8
    await store.close()

    again = open_store(tmp_path)
    await again.ensure_schema()
    store = again
    assert await observed() == before
    assert "metadata.team" in again._shards.indexed[again._shards.active]
    await again.close()


async def test_a_reopened_shard_searches_with_this_machines_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A shard remembers its search pool in edge_config.json: one created on a
    # one-core machine and reopened on a bigger one must not keep one thread.
    monkeypatch.setattr(qdrant_edge, "SEARCH_THREADS", 1)
    store = open_store(tmp_path)
    await store.ensure_schema()
    await store.write(plan("d1", 3))
    await store.close()
    config = tmp_path / "edge" / "chunks-g0" / "edge_config.json"
    assert json.loads(config.read_text())["max_search_threads"] == 1
    monkeypatch.setattr(qdrant_edge, "SEARCH_THREADS", 3)
    reopened = open_store(tmp_path)
    await reopened.ensure_schema()
    assert len(await reopened.search([1.0, 0.0, 1.0], 3)) == 3
    await reopened.close()
    assert json.loads(config.read_text())["max_search_threads"] == 3


async def test_a_store_used_before_it_is_opened_says_so_and_writes_nothing(
    tmp_path: Path,
) -> None:
    store = open_store(tmp_path)
    with pytest.raises(RuntimeError, match="ensure_schema"):
        await store.search([1.0, 0.0, 0.0], 3)
    with pytest.raises(RuntimeError, match="ensure_schema"):
        await store.write(plan("d1", 1))
    await store.close()
    assert not list(tmp_path.rglob("*")), "no stray shard at the store's root"


async def test_a_second_opener_of_the_same_folder_is_refused(tmp_path: Path) -> None:
    first = open_store(tmp_path)
    await first.ensure_schema()
    second = open_store(tmp_path)
    with pytest.raises(Exception, match="WAL"):
        await second.ensure_schema()
    await second.close()
    await first.close()


async def test_generations_are_shard_folders_and_the_pointer_switches_them(
    tmp_path: Path,
) -> None:
    live = open_store(tmp_path)
    await live.ensure_schema()
    gens = QdrantGenerations(live)
    await live.write(plan("d", 2, word="kiln"))
    new = await gens.begin()
    await live.pinned(new).write(plan("d", 4, word="kiln"))
    pinned_hits = await live.pinned(new).search_lexical("kiln", 10)
    seen_before = (await gens.state(), await live.count("d"), len(pinned_hits), await gens.begin())
    assert seen_before == (GenerationState("chunks-g0", "chunks-g1"), 2, 4, "chunks-g1")

    old = await gens.activate(new)
    assert (old, await live.count("d"), await gens.size(new)) == ("chunks-g0", 4, {"chunks": 4})
    with pytest.raises(ValueError, match="active generation"):
        await gens.drop(new)
    await gens.drop(old)
    root = tmp_path / "edge"
    assert sorted(p.name for p in root.iterdir()) == ["chunks-g1", "chunks.active"]
    assert (root / "chunks.active").read_text() == "chunks-g1"
    await live.close()

    restarted = open_store(tmp_path)
    await restarted.ensure_schema()
    again = QdrantGenerations(restarted)
    assert await again.begin() == "chunks-g2"
    await again.abandon()
    assert (await again.state(), await restarted.count("d")) == (
        GenerationState("chunks-g1", None),
        4,
    )
    await restarted.close()
