"""The vector store against a real Qdrant, on every engine: Qdrant Edge and
qdrant-client's local mode (embedded), and a Qdrant server (the session's own,
tests/integration/conftest.py `qdrant_server`): write plans, orphans, deletes,
dense and BM25 search, filters, and the layout check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from core.settings import QdrantSettings
from core.types import DocumentDeletion, IndexedChunk, SearchFilter, StoreNeedsOperator, WritePlan
from sinks.qdrant.edge import EdgeVectorStore
from sinks.qdrant.server import QdrantVectorStore
from tests.integration.helpers import server_store_settings

Store = QdrantVectorStore | EdgeVectorStore
pytestmark = pytest.mark.integration


def chunk(
    doc: str, index: int, text: str, version: int = 1, count: int = 2, team: str = "a"
) -> IndexedChunk:
    vector = [1.0, 0.0, 0.0] if "alpha" in text else [0.0, 1.0, 0.0]
    chunk_id = f"00000000-0000-5000-8000-{abs(hash((doc, index))) % 10**12:012d}"
    return IndexedChunk(
        chunk_id, doc, version, index, count, "T", text, vector, "corr", metadata={"team": team}
    )


def open_store(path: Path, engine: str, dimension: int = 3) -> Store:
    settings = QdrantSettings(path=path, engine=engine)
    kind = EdgeVectorStore if engine == "edge" else QdrantVectorStore
    return kind(settings, dimension)


@pytest.fixture(params=["edge", "local", "server"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "server":
        url = request.getfixturevalue("qdrant_server")
        store: Store = QdrantVectorStore(server_store_settings(url), dimension=3)
    else:
        store = open_store(tmp_path / "q", request.param)
    await store.ensure_schema()
    yield store
    await store.close()


async def test_a_shorter_version_drops_its_orphans_and_a_delete_drops_all(store: Store) -> None:
    await store.write(
        WritePlan(
            upserts=[
                chunk("d", 0, "alpha one", count=3),
                chunk("d", 1, "beta", count=3),
                chunk("d", 2, "gamma", count=3),
            ],
            chunk_counts={"d": 3},
        )
    )
    assert await store.count("d") == 3
    await store.write(
        WritePlan(upserts=[chunk("d", 0, "alpha two", version=2, count=1)], chunk_counts={"d": 1})
    )
    assert (await store.count("d"), await store.count("d", version=2)) == (1, 1)
    await store.write(WritePlan(deletions=[DocumentDeletion("d", 3, "corr")]))
    assert await store.count("d") == 0


async def test_dense_and_lexical_search_honour_filters(store: Store) -> None:
    await store.write(
        WritePlan(
            upserts=[
                chunk("x", 0, "alpha kettles whistle", team="a", count=1),
                chunk("y", 0, "beta kettles hum", team="b", count=1),
            ],
            chunk_counts={"x": 1, "y": 1},
        )
    )
    dense = await store.search([1.0, 0.0, 0.0], 2)
    assert [h.doc_id for h in dense] == ["x", "y"]
    lexical = await store.search_lexical("humming kettle", 5)
    assert lexical[0].doc_id == "y" and lexical[0].retriever == "lexical"
    team_b = SearchFilter(metadata=(("team", "b"),))
    assert [h.doc_id for h in await store.search([1.0, 0.0, 0.0], 5, team_b)] == ["y"]
    assert [h.doc_id for h in await store.search_lexical("kettles", 5, team_b)] == ["y"]
    assert [
        h.doc_id for h in await store.search_lexical("kettles", 5, SearchFilter(doc_ids=("x",)))
    ] == ["x"]
    assert await store.search_lexical("the of and", 5) == [], "stop words alone match nothing"
    if isinstance(store, QdrantVectorStore) and not store.settings.embedded:
        # The filtered key has its keyword index, as in Qdrant Edge (local mode has none).
        info = store.client.get_collection(await store.active_generation())
        assert "metadata.team" in info.payload_schema


async def test_hits_carry_the_chunk_and_sources_and_doc_ids_match_any_of(store: Store) -> None:
    def sourced(doc: str, source: str) -> IndexedChunk:
        return replace(chunk(doc, 0, f"alpha {doc} kettles", count=1), source=source)

    upserts = [sourced("p", "wiki"), sourced("q", "mail"), sourced("r", "chat")]
    await store.write(WritePlan(upserts=upserts, chunk_counts={c.doc_id: 1 for c in upserts}))
    [hit] = await store.search([1.0, 0.0, 0.0], 1, SearchFilter(doc_ids=("q",)))
    assert (hit.chunk_id, hit.doc_id, hit.index, hit.text, hit.title, hit.correlation_id) == (
        upserts[1].chunk_id,
        "q",
        0,
        "alpha q kettles",
        "T",
        "corr",
    )
    assert hit.score == pytest.approx(1.0) and hit.retriever == "dense"
    two_sources = SearchFilter(sources=("wiki", "chat"))
    assert sorted(h.doc_id for h in await store.search([1.0, 0.0, 0.0], 5, two_sources)) == [
        "p",
        "r",
    ]
    both = SearchFilter(sources=("wiki", "chat"), doc_ids=("q", "r"))
    assert [h.doc_id for h in await store.search_lexical("kettles", 5, both)] == ["r"]
    unknown = SearchFilter(metadata=(("nobody", "set this"),))
    assert await store.search([1.0, 0.0, 0.0], 5, unknown) == []


@pytest.mark.parametrize("engine", ["local", "server"])
async def test_a_collection_with_an_older_layout_is_refused(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from qdrant_client import AsyncQdrantClient, models

    if engine == "server":
        settings = server_store_settings(request.getfixturevalue("qdrant_server"))
        client = AsyncQdrantClient(url=settings.url)
    else:
        settings = QdrantSettings(path=tmp_path / "old")
        client = AsyncQdrantClient(path=str(settings.path))
    await client.create_collection(
        settings.collection,
        vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE),
    )
    await client.close()  # the local mode admits one client at a time
    store = QdrantVectorStore(settings, dimension=3)
    with pytest.raises(StoreNeedsOperator, match="older layout") as raised:
        await store.ensure_schema()
    assert raised.value.reason == "old_layout"
    await store.close()


async def test_an_edge_shard_with_an_older_layout_is_refused(tmp_path: Path) -> None:
    import qdrant_edge as edge

    root = tmp_path / "old" / "edge"
    unnamed = edge.EdgeVectorParams(size=3, distance=edge.Distance.Cosine)
    edge.EdgeShard.create(
        str(root / "docstream_chunks-g0"), edge.EdgeConfig(vectors=unnamed)
    ).close()
    (root / "docstream_chunks.active").write_text("docstream_chunks-g0")
    store = open_store(tmp_path / "old", "edge")
    with pytest.raises(StoreNeedsOperator, match="older layout") as raised:
        await store.ensure_schema()
    assert raised.value.reason == "old_layout"
    await store.close()


async def test_processes_that_start_at_once_share_the_first_generation(
    request: pytest.FixtureRequest,
) -> None:
    """Two workers (or a worker and an API) starting together against one
    server both find no alias and both make `<alias>-g0`: the later one meets
    what the first made, which is a success, not a refused write."""
    settings = server_store_settings(request.getfixturevalue("qdrant_server"))
    first, second = (QdrantVectorStore(settings, dimension=3) for _ in range(2))
    # The second looks (no alias, no collection of that name) before the first
    # makes anything, and creates after it: its first answers are replayed.
    seen_alias = [await second.alias_target()]
    seen_exists = [second.client.collection_exists(settings.collection)]
    assert seen_alias == [None] and seen_exists == [False]
    await first.ensure_schema()
    alias_now, exists_now = second.alias_target, second.client.collection_exists

    async def alias_then() -> str | None:
        return seen_alias.pop() if seen_alias else await alias_now()

    def exists_then(name: str) -> bool:
        return seen_exists.pop() if seen_exists else exists_now(name)

    second.alias_target = alias_then  # type: ignore[method-assign]
    second.client.collection_exists = exists_then  # type: ignore[method-assign]
    await second.ensure_schema()
    assert await first.alias_target() == f"{settings.collection}-g0"
    # One generation of this alias (the session's server holds other tests' too).
    mine = [n for n in await second.generation_names() if n.startswith(f"{settings.collection}-g")]
    assert mine == [f"{settings.collection}-g0"]
    await first.close()
    await second.close()
