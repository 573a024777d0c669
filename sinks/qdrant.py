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
from core.types import Hit, IndexedChunk


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
    }


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

    async def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        if not chunks:
            return
        points = [
            models.PointStruct(id=c.chunk_id, vector=list(c.vector), payload=_payload(c))
            for c in chunks
        ]
        await self.client.upsert(self.collection, points=points, wait=True)

    async def search(self, vector: Sequence[float], limit: int) -> list[Hit]:
        response = await self.client.query_points(
            self.collection, query=list(vector), limit=limit, with_payload=True
        )
        return [_hit(point) for point in response.points]

    async def chunk_ids(self, doc_id: str) -> set[str]:
        """Every point id of one document (for tests and operators)."""
        flt = models.Filter(
            must=[models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))]
        )
        points, _ = await self.client.scroll(self.collection, scroll_filter=flt, limit=10_000)
        return {str(p.id) for p in points}

    async def ping(self) -> None:
        await self.client.get_collections()

    async def close(self) -> None:
        await self.client.close()
