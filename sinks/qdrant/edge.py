"""Qdrant Edge as the embedded vector store: the engine of a Qdrant server (HNSW
for the dense vectors, an inverted index for the BM25 sparse ones, payload
indexes) inside this process, on disk under `QDRANT_PATH`/edge.

The points are the ones `sinks/qdrant/server.py` writes to a server (same ids, payload,
BM25 vectors and filters, built by its helpers). What the engine changes:

- One process opens a shard folder, as in local mode: the worker serves the API.
- There is no background optimizer. New points are searched by brute force
  until `optimize()` indexes them; the store runs it itself once
  `OPTIMIZE_AFTER` points have been written to a shard since the last run.
- A query releases the GIL while it searches, but `optimize()` holds it
  throughout: while it builds an index the whole process waits (event loop,
  queries, Kafka heartbeats), 10 to 40 s per 20k points on two busy cores.
  Segments are capped at `MAX_SEGMENT_KB` so one run never re-indexes the
  whole shard; each run is logged with its duration.

Generations (`ops/jobs/rebuild.py`) are shard folders `<collection>-g<n>`; the file
`<collection>.active` names the one queries and the live sink use, and
switching rewrites it (an atomic rename) and swaps the shard in one step.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import qdrant_edge as edge
from qdrant_client import models

from core.logs import get_logger
from core.settings import QdrantSettings
from core.types import Hit, IndexedChunk, SearchFilter, WritePlan
from sinks.errors import needs_operator
from sinks.qdrant.base import AliasedStore, metadata_keys_to_index
from sinks.qdrant.edge_filters import doc_filter, edge_filter
from sinks.qdrant.edge_profiles import profile_path, read_profile, write_profile
from sinks.qdrant.errors import STORE, mapped
from sinks.qdrant.lexical import Bm25, SparseTerms
from sinks.qdrant.server import DENSE, LEXICAL, PAYLOAD_INDEXES, _filter, _hit, _payload

log = get_logger(__name__)
T = TypeVar("T")
THREADS = 2
# A shard's search pool, set on every load: left unset, a shard keeps the count
# it was created with, so one moved to a bigger machine would not use its cores.
SEARCH_THREADS = os.cpu_count() or 1
OPTIMIZE_AFTER = 20_000  # points written to a shard before the store indexes them
MAX_SEGMENT_KB = 32_000  # about 20k points of 384 floats: bounds one optimize run
INDEXING_THRESHOLD_KB = 10_000  # smaller segments stay unindexed: a scan is as quick
# ef_construct 64, not 100: a third less build time (the pause). Searching with
# ef 128 (the default is ef_construct) took recall@30 from 0.90 to 0.97 at 100k
# chunks for under a millisecond more.
HNSW = edge.HnswIndexConfig(m=16, ef_construct=64, full_scan_threshold=10_000)
DENSE_SEARCH = edge.SearchParams(hnsw_ef=128)
# Filters only ever narrow a search (keyword and integer equality, ranges), so no
# payload-aware HNSW links: they tripled the index build time for nothing.
INDEX_PARAMS: dict[models.PayloadSchemaType, Any] = {
    models.PayloadSchemaType.KEYWORD: edge.KeywordIndexParams(enable_hnsw=False),
    models.PayloadSchemaType.INTEGER: edge.IntegerIndexParams(
        lookup=True, range=True, enable_hnsw=False
    ),
}


@dataclass
class _Shards:
    """What the live store and its pinned copies share: the open shards, the
    active generation, and per shard its indexed fields and unindexed writes."""

    root: Path
    alias: str
    active: str = ""
    open: dict[str, edge.EdgeShard] = field(default_factory=dict)
    indexed: dict[str, set[str]] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)
    opening: threading.Lock = field(default_factory=threading.Lock)  # one opener per folder

    @property
    def pointer(self) -> Path:
        return self.root / f"{self.alias}.active"


class EdgeVectorStore(AliasedStore):
    """Every public method raises only the contract's `StoreError`s for store
    failures (`sinks/qdrant/errors.py`: OS errors by errno, the engine's own)."""

    def __init__(self, settings: QdrantSettings, dimension: int, bm25: Bm25 | None = None) -> None:
        super().__init__(settings, dimension, bm25)
        self._shards = _Shards(settings.path / "edge", settings.collection)
        # Off the event loop: a query releases the GIL while it searches, so the
        # loop serves other requests meanwhile, and a second thread lets a
        # request's dense and lexical searches run at once.
        self._executor = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="qdrant-edge")

    @property
    def location(self) -> str:
        return f"edge:{self._shards.root}"

    async def ensure_schema(self) -> None:
        await self._call(self._ensure_schema)

    def _ensure_schema(self) -> None:
        if self.is_pinned:
            return  # a pinned generation is created by the rebuild that owns it
        shards = self._shards
        shards.root.mkdir(parents=True, exist_ok=True)
        if (self.settings.path / "collection").exists():
            log.warning(
                "qdrant local-mode data found beside the edge shards; the edge engine "
                "does not read it: fill it with `docstream rebuild --target qdrant`, "
                "or set QDRANT_ENGINE=local",
                extra={"path": str(self.settings.path)},
            )
        if shards.pointer.exists():
            shards.active = shards.pointer.read_text().strip()
        else:
            self._create(f"{self.alias}-g0")
            self._point_to(f"{self.alias}-g0")
        # Index what a stop left unindexed before serving (no-op when there is none).
        self._optimize(shards.active, self._open(shards.active))

    def _config(self) -> edge.EdgeConfig:
        return edge.EdgeConfig(
            vectors={
                DENSE: edge.EdgeVectorParams(size=self.dimension, distance=edge.Distance.Cosine)
            },
            # Qdrant applies IDF at query time from live statistics, as on a server.
            sparse_vectors={LEXICAL: edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)},
            hnsw_config=HNSW,
            max_search_threads=SEARCH_THREADS,
            optimizers=edge.EdgeOptimizersConfig(
                max_segment_size=MAX_SEGMENT_KB, indexing_threshold=INDEXING_THRESHOLD_KB
            ),
        )

    def _create(self, name: str) -> None:
        shard = edge.EdgeShard.create(str(self._shards.root / name), self._config())
        for field_name, kind in PAYLOAD_INDEXES.items():
            shard.update(edge.UpdateOperation.create_field_index(field_name, INDEX_PARAMS[kind]))
        self._keep(name, shard)

    def _open(self, name: str) -> edge.EdgeShard:
        shards = self._shards
        with shards.opening:
            if name not in shards.open:
                self._load(name)
        return shards.open[name]

    def _load(self, name: str) -> None:
        folder = self._shards.root / name
        try:
            shard = edge.EdgeShard.load(str(folder), self._config())
        except Exception as exc:
            if "incompatible" not in str(exc):
                raise
            raise needs_operator(
                STORE,
                f"Qdrant Edge shard {name!r} has an older layout ({exc}): remove it (the "
                f"{folder} folder) and replay the topics into a new one",
                "old_layout",
            ) from exc
        self._keep(name, shard)

    def _keep(self, name: str, shard: edge.EdgeShard) -> None:
        self._shards.open[name] = shard
        self._shards.indexed[name] = set(shard.info().payload_schema)
        self._shards.pending.setdefault(name, 0)

    def _point_to(self, name: str) -> None:
        """Name the active generation: write a new pointer file, then rename it
        over the old one (atomic), so a crash leaves one or the other."""
        pointer = self._shards.pointer
        staged = pointer.with_suffix(".staged")
        staged.write_text(name)
        os.replace(staged, pointer)
        self._shards.active = name

    def _shard(self) -> tuple[str, edge.EdgeShard]:
        name = self.collection if self.is_pinned else self._shards.active
        if not name:
            # Without this, the shard folder would be the store's root itself:
            # Qdrant Edge would create a stray shard there and use it.
            raise RuntimeError("the Qdrant Edge store is not open: await ensure_schema() first")
        return name, self._open(name)

    async def write(self, plan: WritePlan) -> None:
        await self._call(self._write, plan)

    def _write(self, plan: WritePlan) -> None:
        name, shard = self._shard()
        operations = [
            edge.UpdateOperation.delete_points_by_filter(doc_filter(d.doc_id))
            for d in plan.deletions
        ]
        if plan.upserts:
            self._index_metadata(name, shard, plan.upserts)
            points = [self._point(chunk) for chunk in plan.upserts]
            operations.append(edge.UpdateOperation.upsert_points(points))
        operations += [
            edge.UpdateOperation.delete_points_by_filter(
                doc_filter(doc_id, chunk_index=models.Range(gte=count))
            )
            for doc_id, count in plan.chunk_counts.items()
        ]
        for operation in operations:
            shard.update(operation)
        self._shards.pending[name] += len(plan.upserts)
        if self._shards.pending[name] >= OPTIMIZE_AFTER:
            self._optimize(name, shard)

    def _point(self, chunk: IndexedChunk) -> edge.Point:
        terms = self.bm25.document(f"{chunk.title}\n{chunk.text}")
        vectors: dict[str, Any] = {
            DENSE: list(chunk.vector),
            LEXICAL: edge.SparseVector(terms.indices, terms.values),
        }
        return edge.Point(chunk.chunk_id, vectors, _payload(chunk))

    def _index_metadata(self, name: str, shard: edge.EdgeShard, chunks: list[IndexedChunk]) -> None:
        """A keyword index for each metadata key as it first appears (base.py)."""
        indexed = self._shards.indexed[name]
        for key in metadata_keys_to_index(indexed, chunks):
            keyword = INDEX_PARAMS[models.PayloadSchemaType.KEYWORD]
            try:
                shard.update(edge.UpdateOperation.create_field_index(key, keyword))
            except Exception as exc:  # a key that is no valid path: filters on it scan
                log.warning("metadata key not indexed", extra={"key": key, "error": repr(exc)})
            indexed.add(key)

    async def optimize(self) -> bool:
        """Index what was written since the last run (the store also does it on its own)."""
        return await self._call(lambda: self._optimize(*self._shard()))

    def _optimize(self, name: str, shard: edge.EdgeShard) -> bool:
        self._shards.pending[name] = 0
        started = time.perf_counter()
        changed = shard.optimize()
        if changed:  # the process stood still meanwhile: say for how long
            took = round(time.perf_counter() - started, 1)
            log.info("qdrant edge shard optimized", extra={"shard": name, "seconds": took})
        return changed

    async def search(
        self, vector: Sequence[float], limit: int, where: SearchFilter | None = None
    ) -> list[Hit]:
        nearest = edge.Query.Nearest(list(vector), using=DENSE)
        return await self._call(self._query, nearest, limit, where, "dense", DENSE_SEARCH)

    async def _search_sparse(
        self, terms: SparseTerms, limit: int, where: SearchFilter | None
    ) -> list[Hit]:
        sparse = edge.SparseVector(terms.indices, terms.values)
        nearest = edge.Query.Nearest(sparse, using=LEXICAL)
        return await self._call(self._query, nearest, limit, where, "lexical")

    def _query(
        self,
        nearest: edge.Query,
        limit: int,
        where: SearchFilter | None,
        retriever: str,
        params: edge.SearchParams | None = None,
    ) -> list[Hit]:
        condition = _filter(where)
        request = edge.QueryRequest(
            limit=limit,
            query=nearest,
            filter=None if condition is None else edge_filter(condition),
            params=params,
            with_payload=True,
        )
        return [_hit(point, retriever) for point in self._shard()[1].query(request)]

    async def count(self, doc_id: str, version: int | None = None) -> int:
        """Points of one document (of one version, if given)."""
        where = doc_filter(doc_id) if version is None else doc_filter(doc_id, version=version)
        return await self._call(lambda: self._shard()[1].count(edge.CountRequest(filter=where)))

    async def info(self) -> dict[str, int]:
        """The active generation's size; counts are approximate until optimized,
        and `indexed_vectors` counts dense and sparse vectors in indexed segments."""

        def read() -> dict[str, int]:
            info = self._shard()[1].info()
            return {
                "points": info.points_count,
                "segments": info.segments_count,
                "indexed_vectors": info.indexed_vectors_count,
            }

        return await self._call(read)

    async def ping(self) -> None:
        await self._call(self._shard)

    async def close(self) -> None:
        try:
            await self._call(self._close_all)
        finally:  # a store that failed to close still lets its thread go
            self._executor.shutdown(wait=False)

    def _close_all(self) -> None:
        for shard in self._shards.open.values():
            shard.close()
        self._shards.open.clear()

    # Generations (`sinks/qdrant/generations.py`): one shard folder each, and the
    # `<alias>.active` pointer; all on the store's own thread, like every call.

    async def active_generation(self) -> str:
        return await self._call(lambda: self._shards.active)

    async def generation_names(self) -> list[str]:
        """Every shard folder's name; the caller picks the generations among them."""

        def folders() -> list[str]:
            root = self._shards.root
            return [p.name for p in root.iterdir() if p.is_dir()] if root.exists() else []

        return await self._call(folders)

    async def create_collection(self, name: str, deferred_index: bool = False) -> None:
        """`deferred_index` changes nothing here: the engine has no background
        indexing to defer. A shard indexes a segment only when `optimize` runs,
        and segments are capped (`MAX_SEGMENT_KB`), so each gets its graph built
        once either way; deferring every run to the switch would only make one
        long pause (`optimize` holds the GIL) out of several short ones."""
        await self._call(self._create, name)

    async def build_index(self, name: str) -> None:
        """Index what shard `name` holds unindexed (its switch does it too)."""
        await self._call(lambda: self._optimize(name, self._open(name)))

    async def bulk_upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        """Upserts only: one engine call for the batch (see `write`)."""
        await self._call(self._write, WritePlan(upserts=list(chunks)))

    async def switch_to(self, gen: str) -> str:
        """Make shard `gen` the live one; returns the one that was."""

        def switch() -> str:
            previous = self._shards.active
            self._open(gen).optimize()  # index it before queries land on it
            self._point_to(gen)
            return previous

        return await self._call(switch)

    async def drop_collection(self, name: str) -> None:
        await self._call(self._remove, name)

    def _remove(self, name: str) -> None:
        shards = self._shards
        if name == shards.active:  # checked on this thread: no switch can come between
            raise ValueError(f"refusing to drop {name}: it is the active generation")
        if name in shards.open:
            shards.open.pop(name).close()
        # A later generation may take the name again: forget what this one had.
        shards.pending.pop(name, None)
        shards.indexed.pop(name, None)
        shutil.rmtree(shards.root / name, ignore_errors=True)
        profile_path(shards.root, name).unlink(missing_ok=True)

    async def record_profile(self, name: str, profile: dict[str, Any]) -> None:
        await self._call(write_profile, profile_path(self._shards.root, name), profile)

    async def profile_of(self, name: str) -> dict[str, Any] | None:
        return await self._call(read_profile, profile_path(self._shards.root, name))

    async def points_in(self, name: str) -> int:
        """How many points shard `name` holds (0 if there is none)."""

        def count() -> int:
            if not (self._shards.root / name).is_dir():
                return 0
            return self._open(name).count(edge.CountRequest())

        return await self._call(count)

    async def _call(self, method: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        with mapped():
            return await loop.run_in_executor(self._executor, partial(method, *args))
