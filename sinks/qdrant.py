"""Qdrant as the vector store: one point per chunk, id = the chunk's derived uuid.

Embedded (qdrant-client local mode, on disk at `QDRANT_PATH`) by default, a
Qdrant server when `QDRANT_URL` is set. Local mode allows one opener per path,
which is why the single-machine mode runs the worker and the API in one process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qdrant_client import AsyncQdrantClient, models

from core.settings import QdrantSettings
from core.types import Hit, IndexedChunk, WritePlan


def _payload(chunk: IndexedChunk) -> dict[str, Any]:
    return {
        "doc_id": chunk.doc_id,
        "version": chunk.version,
        "chunk_index": chunk.index,
        "chunk_count": chunk.chunk_count,
        "title": chunk.title,
        "text": chunk.text,
        "source": chunk.source,
        "metadata": chunk.metadata,
        "correlation_id": chunk.correlation_id,
        "links": chunk.links,
    }


def _of_doc(doc_id: str, *more: models.FieldCondition) -> models.Filter:
    match = models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))
    return models.Filter(must=[match, *more])


def _hit(point: Any) -> Hit:
    payload = point.payload or {}
    return Hit(
        chunk_id=str(point.id),
        doc_id=payload.get("doc_id", ""),
        index=int(payload.get("chunk_index", 0)),
        text=payload.get("text", ""),
        score=float(point.score),
        correlation_id=payload.get("correlation_id", ""),
        retriever="dense",
        title=payload.get("title", ""),
    )


class QdrantVectorStore:
    def __init__(self, settings: QdrantSettings, dimension: int) -> None:
        self.settings = settings
        self.dimension = dimension
        self.collection = settings.collection
        if settings.embedded:
            settings.path.mkdir(parents=True, exist_ok=True)
            self.client = AsyncQdrantClient(path=str(settings.path))
        else:
            self.client = AsyncQdrantClient(url=settings.url, api_key=settings.api_key or None)

    @property
    def location(self) -> str:
        return f"embedded:{self.settings.path}" if self.settings.embedded else "server"

    async def ensure_schema(self) -> None:
        if await self.client.collection_exists(self.collection):
            return
        await self.client.create_collection(
            self.collection,
            vectors_config=models.VectorParams(
                size=self.dimension, distance=models.Distance.COSINE
            ),
        )
        await self.client.create_payload_index(
            self.collection, "doc_id", field_schema=models.PayloadSchemaType.KEYWORD
        )
        await self.client.create_payload_index(
            self.collection, "chunk_index", field_schema=models.PayloadSchemaType.INTEGER
        )

    async def write(self, plan: WritePlan) -> None:
        for deletion in plan.deletions:
            await self._delete_where(_of_doc(deletion.doc_id))
        if plan.upserts:
            points = [
                models.PointStruct(id=c.chunk_id, vector=list(c.vector), payload=_payload(c))
                for c in plan.upserts
            ]
            await self.client.upsert(self.collection, points=points, wait=True)
        for doc_id, count in plan.chunk_counts.items():
            orphans = models.FieldCondition(key="chunk_index", range=models.Range(gte=count))
            await self._delete_where(_of_doc(doc_id, orphans))

    async def _delete_where(self, condition: models.Filter) -> None:
        selector = models.FilterSelector(filter=condition)
        await self.client.delete(self.collection, points_selector=selector, wait=True)

    async def search(self, vector: Sequence[float], limit: int) -> list[Hit]:
        response = await self.client.query_points(
            self.collection, query=list(vector), limit=limit, with_payload=True
        )
        return [_hit(point) for point in response.points]

    async def count(self, doc_id: str, version: int | None = None) -> int:
        """Points of one document (of one version, if given)."""
        conditions = []
        if version is not None:
            conditions.append(
                models.FieldCondition(key="version", match=models.MatchValue(value=version))
            )
        result = await self.client.count(self.collection, count_filter=_of_doc(doc_id, *conditions))
        return int(result.count)

    async def ping(self) -> None:
        await self.client.get_collections()

    async def close(self) -> None:
        await self.client.close()
