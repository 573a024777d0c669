"""Qdrant as the vector store: one point per chunk, id = the chunk's derived uuid.

Embedded (qdrant-client local mode, on disk at `QDRANT_PATH`) by default, a
Qdrant server when `QDRANT_URL` is set. Local mode allows one opener per path,
which is why the single-machine mode runs the worker and the API in one process.

`QDRANT_COLLECTION` names an alias; the points live in one collection per
generation behind it (`<alias>-g0`, `<alias>-g1`, …), so a rebuild can fill a
new one and switch the alias in one step (`sinks/qdrant/generations.py`).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from qdrant_client import QdrantClient, models

from core.settings import QdrantSettings
from core.types import Hit, IndexedChunk, SearchFilter, StoreRejected, WritePlan
from sinks.errors import needs_operator
from sinks.qdrant.base import AliasedStore, metadata_keys_to_index
from sinks.qdrant.errors import STORE, mapped
from sinks.qdrant.lexical import Bm25, SparseTerms

T = TypeVar("T")
HNSW_M = 16  # Qdrant's default graph degree: what a generation ends up with
BULK_SLICE = 256  # points per upsert call of a bulk fill, several calls at once
INDEX_POLL_S = 0.5
PROFILE_KEY = "docstream_profile"  # the generation's profile in the collection's metadata
DENSE = "dense"
LEXICAL = "lexical"
PAYLOAD_INDEXES = {
    "doc_id": models.PayloadSchemaType.KEYWORD,
    "chunk_index": models.PayloadSchemaType.INTEGER,
    "source": models.PayloadSchemaType.KEYWORD,
    "version": models.PayloadSchemaType.INTEGER,
}


def _payload(chunk: IndexedChunk) -> dict[str, Any]:
    """A point's payload (server and edge alike): the keys filters and hits read."""
    extra = {"chunk_index": chunk.index, "metadata": chunk.metadata, "links": chunk.links}
    return {**chunk.provenance(), **extra}


def _of_doc(doc_id: str, *more: models.FieldCondition) -> models.Filter:
    match = models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))
    return models.Filter(must=[match, *more])


def _filter(where: SearchFilter | None) -> models.Filter | None:
    if not where:
        return None
    must: list[models.Condition] = [
        models.FieldCondition(key=f"metadata.{key}", match=models.MatchValue(value=value))
        for key, value in where.metadata
    ]
    if where.sources:
        must.append(
            models.FieldCondition(key="source", match=models.MatchAny(any=list(where.sources)))
        )
    if where.doc_ids:
        must.append(
            models.FieldCondition(key="doc_id", match=models.MatchAny(any=list(where.doc_ids)))
        )
    return models.Filter(must=must)


def _hit(point: Any, retriever: str) -> Hit:
    payload = point.payload or {}
    return Hit(
        chunk_id=str(point.id),
        doc_id=payload.get("doc_id", ""),
        index=int(payload.get("chunk_index", 0)),
        text=payload.get("text", ""),
        score=float(point.score),
        correlation_id=payload.get("correlation_id", ""),
        retriever=retriever,
        title=payload.get("title", ""),
    )


def server_options(settings: QdrantSettings) -> dict[str, Any]:
    """How the client reaches a server: its API key, and for https with a
    private CA an SSL context trusting that CA (qdrant-client hands `verify`
    to httpx). The client's version check ignores `verify`, so it is off then:
    it would only warn that the server's version cannot be read."""
    options: dict[str, Any] = {"api_key": settings.api_key.reveal() or None}
    if settings.ca_file is not None:
        options["verify"] = ssl.create_default_context(cafile=str(settings.ca_file))
        options["check_compatibility"] = False
    return options


class QdrantVectorStore(AliasedStore):
    """Every public method raises only the contract's `StoreError`s for store
    failures (`sinks/qdrant/errors.py`)."""

    def __init__(self, settings: QdrantSettings, dimension: int, bm25: Bm25 | None = None) -> None:
        super().__init__(settings, dimension, bm25)
        if settings.embedded:
            settings.path.mkdir(parents=True, exist_ok=True)
            self.client = QdrantClient(path=str(settings.path))
        else:
            self.client = QdrantClient(url=settings.url, **server_options(settings))
        # Every call runs off the event loop, so Kafka heartbeats and queries go
        # on meanwhile. Embedded (local) mode is plain Python over files and not
        # thread-safe: one thread makes all its calls, in order.
        self._executor = ThreadPoolExecutor(
            max_workers=1 if settings.embedded else 8, thread_name_prefix="qdrant"
        )
        # Per collection addressed (the alias, or a pinned generation), the
        # payload paths known to have an index; shared with pinned copies.
        self._indexed: dict[str, set[str]] = {}

    @property
    def location(self) -> str:
        return f"embedded:{self.settings.path}" if self.settings.embedded else "server"

    async def alias_target(self) -> str | None:
        aliases = await self._call(self.client.get_aliases)
        return next(
            (a.collection_name for a in aliases.aliases if a.alias_name == self.alias), None
        )

    async def ensure_schema(self) -> None:
        if self.is_pinned:
            return  # a pinned generation is created by the rebuild that owns it
        target = await self.alias_target()
        if target is None and not await self._call(self.client.collection_exists, self.alias):
            target = f"{self.alias}-g0"
            await self._create_first_generation(target)
        # Else: the alias exists, or a collection from before generations has its name.
        await self._check_layout(target or self.alias)

    async def _create_first_generation(self, target: str) -> None:
        """`<alias>-g0` and the alias to it. Several processes sharing a server
        (workers, API processes) may start at once: the one that loses either
        race finds what the winner made, and that is a success."""
        try:
            await self.create_collection(target)
        except StoreRejected:
            if not await self._call(self.client.collection_exists, target):
                raise
        change = models.CreateAliasOperation(
            create_alias=models.CreateAlias(collection_name=target, alias_name=self.alias)
        )
        try:
            await self._call(self.client.update_collection_aliases, [change])
        except StoreRejected:
            if await self.alias_target() != target:
                raise

    async def create_collection(self, name: str, deferred_index: bool = False) -> None:
        """`deferred_index`: no HNSW graph while a rebuild fills it (`m=0`), as
        Qdrant advises for bulk loads; `build_index` makes it once, at the end."""
        await self._call(
            self.client.create_collection,
            name,
            hnsw_config=models.HnswConfigDiff(m=0) if deferred_index else None,
            shard_number=self.settings.shards,
            replication_factor=self.settings.replication_factor,
            write_consistency_factor=self.settings.write_consistency,
            vectors_config={
                DENSE: models.VectorParams(size=self.dimension, distance=models.Distance.COSINE)
            },
            # Qdrant applies IDF at query time from live statistics: BM25 that
            # stays correct as chunks stream in.
            sparse_vectors_config={
                LEXICAL: models.SparseVectorParams(modifier=models.Modifier.IDF)
            },
        )
        if not self.settings.embedded:  # local mode scans; payload indexes do nothing there
            for field, kind in PAYLOAD_INDEXES.items():
                await self._call(self.client.create_payload_index, name, field, field_schema=kind)

    async def _check_layout(self, name: str) -> None:
        info = await self._call(self.client.get_collection, name)
        vectors = info.config.params.vectors
        sparse = info.config.params.sparse_vectors or {}
        if not isinstance(vectors, dict) or DENSE not in vectors or LEXICAL not in sparse:
            raise needs_operator(
                STORE,
                f"collection {name!r} has an older layout (no named {DENSE!r}/{LEXICAL!r} "
                f"vectors): remove it (locally: the {self.settings.path} folder) and replay "
                "the topics into a new one",
                "old_layout",
            )

    async def write(self, plan: WritePlan) -> None:
        for deletion in plan.deletions:
            await self._delete_where(_of_doc(deletion.doc_id))
        if plan.upserts:
            await self._index_metadata(plan.upserts)
            await self._upsert(plan.upserts)
        for doc_id, count in plan.chunk_counts.items():
            orphans = models.FieldCondition(key="chunk_index", range=models.Range(gte=count))
            await self._delete_where(_of_doc(doc_id, orphans))

    async def _delete_where(self, condition: models.Filter) -> None:
        selector = models.FilterSelector(filter=condition)
        await self._call(self.client.delete, self.collection, points_selector=selector, wait=True)

    def _vectors(self, chunk: IndexedChunk) -> dict[str, Any]:
        lexical = self.bm25.document(f"{chunk.title}\n{chunk.text}")
        sparse = models.SparseVector(indices=lexical.indices, values=lexical.values)
        return {DENSE: list(chunk.vector), LEXICAL: sparse}

    async def search(
        self, vector: Sequence[float], limit: int, where: SearchFilter | None = None
    ) -> list[Hit]:
        response = await self._call(
            self.client.query_points,
            self.collection,
            query=list(vector),
            using=DENSE,
            query_filter=_filter(where),
            limit=limit,
            with_payload=True,
        )
        return [_hit(point, "dense") for point in response.points]

    async def _search_sparse(
        self, terms: SparseTerms, limit: int, where: SearchFilter | None
    ) -> list[Hit]:
        response = await self._call(
            self.client.query_points,
            self.collection,
            query=models.SparseVector(indices=terms.indices, values=terms.values),
            using=LEXICAL,
            query_filter=_filter(where),
            limit=limit,
            with_payload=True,
        )
        return [_hit(point, "lexical") for point in response.points]

    async def count(self, doc_id: str, version: int | None = None) -> int:
        """Points of one document (of one version, if given)."""
        conditions = []
        if version is not None:
            conditions.append(
                models.FieldCondition(key="version", match=models.MatchValue(value=version))
            )
        result = await self._call(
            self.client.count, self.collection, count_filter=_of_doc(doc_id, *conditions)
        )
        return int(result.count)

    async def ping(self) -> None:
        await self._call(self.client.get_collections)

    async def cluster(self, collection: str) -> dict[str, Any]:
        """The server's cluster as the node it asks sees it: `enabled` False for
        a single node; else every peer (and the sends to it that failed: a peer
        down), and every replica of each shard of `collection` (the live
        generation, which the caller knows already) with its state (Active,
        Dead, Partial while it catches up…)."""
        status = await self._call(self.client.cluster_status)
        if not isinstance(status, models.ClusterStatusOneOf1):
            return {"enabled": False}
        failures = status.message_send_failures or {}
        peers = [
            {
                "peer": peer,
                "uri": info.uri,
                "failed_sends": failures[info.uri].count if info.uri in failures else 0,
            }
            for peer, info in sorted(status.peers.items(), key=lambda item: int(item[0]))
        ]
        info = await self._call(self.client.collection_cluster_info, collection)
        replicas = [
            {
                "shard": r.shard_id,
                "peer": info.peer_id,
                "state": r.state.value,
                "points": r.points_count,
            }
            for r in info.local_shards
        ] + [
            {"shard": r.shard_id, "peer": r.peer_id, "state": r.state.value}
            for r in info.remote_shards
        ]
        return {
            "enabled": True,
            "asked_peer": status.peer_id,
            "peers": peers,
            "collection": collection,
            "replicas": sorted(replicas, key=lambda r: (r["shard"], r["peer"])),
        }

    async def close(self) -> None:
        try:
            await self._call(self.client.close)
        finally:  # a store that failed to close still lets its thread go
            self._executor.shutdown(wait=False)

    # Generations (`sinks/qdrant/generations.py`): one collection each, behind the alias.

    async def active_generation(self) -> str:
        return await self.alias_target() or self.alias

    async def generation_names(self) -> list[str]:
        """Every collection's name; the caller picks the generations among them."""
        response = await self._call(self.client.get_collections)
        return [c.name for c in response.collections]

    async def switch_to(self, gen: str) -> str:
        """Point the alias at `gen`; returns the collection it named before."""
        previous = await self.alias_target()
        if previous is None and await self._call(self.client.collection_exists, self.alias):
            # A collection from before generations holds the alias's name; it
            # has to go before the alias can exist (the one non-atomic switch).
            await self._call(self.client.delete_collection, self.alias)
            previous = self.alias
        changes: list[models.AliasOperations] = []
        if previous is not None and previous != self.alias:
            changes.append(
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=self.alias))
            )
        changes.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=gen, alias_name=self.alias)
            )
        )
        await self._call(self.client.update_collection_aliases, changes)
        return previous or self.alias

    async def build_index(self, name: str) -> None:
        """Give `name` its HNSW graph (a no-op when it has one) and wait until
        the server says the collection is green: indexed, ready for queries."""
        info = await self._call(self.client.get_collection, name)
        if info.config.hnsw_config.m != HNSW_M:
            await self._call(
                self.client.update_collection, name, hnsw_config=models.HnswConfigDiff(m=HNSW_M)
            )
        while (await self._call(self.client.get_collection, name)).status != (
            models.CollectionStatus.GREEN
        ):
            await asyncio.sleep(INDEX_POLL_S)

    async def record_profile(self, name: str, profile: dict[str, Any]) -> None:
        """In the collection's own metadata, under `PROFILE_KEY`."""
        await self._call(self.client.update_collection, name, metadata={PROFILE_KEY: profile})

    async def profile_of(self, name: str) -> dict[str, Any] | None:
        if not await self._call(self.client.collection_exists, name):
            return None
        info = await self._call(self.client.get_collection, name)
        stored = (info.config.metadata or {}).get(PROFILE_KEY)
        return dict(stored) if isinstance(stored, dict) else None

    async def bulk_upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        """Upserts only, in slices sent at once (a server takes several streams;
        local mode has one thread and takes them in turn)."""
        slices = [chunks[i : i + BULK_SLICE] for i in range(0, len(chunks), BULK_SLICE)]
        await self._index_metadata(chunks)
        await asyncio.gather(*(self._upsert(list(part)) for part in slices))

    async def _index_metadata(self, chunks: Sequence[IndexedChunk]) -> None:
        """A keyword index for each metadata key as it first appears (base.py),
        as Qdrant Edge keeps them: the server found a 1-in-20 metadata filter
        over 11k chunks in 24 ms without one, 0.8 ms with Edge's. Local mode
        has no payload indexes."""
        if self.settings.embedded:
            return
        known = self._indexed.setdefault(self.collection, set())
        if not metadata_keys_to_index(known, chunks):
            return  # every write but a new key's: no call to the server
        # A key new here: ask the collection behind the alias what it has. A
        # rebuild's generation got its keys as it filled (pinned, bulk_upsert).
        name = self.collection if self.is_pinned else await self.active_generation()
        info = await self._call(self.client.get_collection, name)
        known |= set(info.payload_schema)
        for key in metadata_keys_to_index(known, chunks):
            await self._call(
                self.client.create_payload_index,
                name,
                key,
                field_schema=models.PayloadSchemaType.KEYWORD,
                wait=True,
            )
            known.add(key)

    async def _upsert(self, chunks: list[IndexedChunk]) -> None:
        points = [
            models.PointStruct(id=c.chunk_id, vector=self._vectors(c), payload=_payload(c))
            for c in chunks
        ]
        await self._call(self.client.upsert, self.collection, points=points, wait=True)

    async def drop_collection(self, name: str) -> None:
        if await self._call(self.client.collection_exists, name):
            await self._call(self.client.delete_collection, name)

    async def points_in(self, name: str) -> int:
        """Exactly how many points collection `name` holds (0 if there is none)."""
        if not await self._call(self.client.collection_exists, name):
            return 0
        result = await self._call(self.client.count, name, exact=True)
        return int(result.count)

    async def _call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        with mapped():
            return await loop.run_in_executor(self._executor, partial(method, *args, **kwargs))
