"""Neo4j as the graph store: `(:Document)-[:HAS_CHUNK]->(:Chunk)` and
`(:Chunk)-[:NEXT]->(:Chunk)` in reading order, written with idempotent MERGEs in
one UNWIND per batch, so a replayed event changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from neo4j import AsyncDriver, AsyncGraphDatabase

from core.settings import Neo4jSettings
from core.types import Hit, IndexedChunk

SCHEMA = (
    "CREATE CONSTRAINT document_id IF NOT EXISTS FOR (d:Document) REQUIRE d.doc_id IS UNIQUE",
    "CREATE CONSTRAINT chunk_id IF NOT EXISTS FOR (c:Chunk) REQUIRE c.chunk_id IS UNIQUE",
)

# NEXT edges are merged from both sides of a pair: whichever chunk of a pair
# arrives second links them, so the order of arrival does not matter.
UPSERT = """
UNWIND $rows AS row
MERGE (d:Document {doc_id: row.doc_id})
  SET d.title = row.title, d.source = row.source, d.version = row.version,
      d.correlation_id = row.correlation_id
MERGE (c:Chunk {chunk_id: row.chunk_id})
  SET c.doc_id = row.doc_id, c.chunk_index = row.index, c.chunk_count = row.chunk_count,
      c.text = row.text,
      c.version = row.version, c.correlation_id = row.correlation_id
MERGE (d)-[:HAS_CHUNK]->(c)
WITH c, row
OPTIONAL MATCH (prev:Chunk {doc_id: row.doc_id, chunk_index: row.index - 1})
OPTIONAL MATCH (next:Chunk {doc_id: row.doc_id, chunk_index: row.index + 1})
FOREACH (p IN CASE WHEN prev IS NULL THEN [] ELSE [prev] END | MERGE (p)-[:NEXT]->(c))
FOREACH (n IN CASE WHEN next IS NULL THEN [] ELSE [next] END | MERGE (c)-[:NEXT]->(n))
"""

NEIGHBOURS = """
UNWIND $ids AS id
MATCH (c:Chunk {chunk_id: id})-[:NEXT]-(n:Chunk)
WHERE NOT n.chunk_id IN $ids
WITH id, n ORDER BY n.chunk_index
WITH id, collect(n)[..$per_chunk] AS ns
UNWIND ns AS n
MATCH (d:Document {doc_id: n.doc_id})
RETURN id AS seed, n.chunk_id AS chunk_id, n.doc_id AS doc_id, n.chunk_index AS idx,
       n.text AS text, n.correlation_id AS correlation_id, d.title AS title
"""


class Neo4jGraphStore:
    def __init__(self, settings: Neo4jSettings) -> None:
        self.settings = settings
        self._driver: AsyncDriver | None = None

    @property
    def driver(self) -> AsyncDriver:
        # Created on first use, inside the event loop that will use it.
        if self._driver is None:
            self._driver = AsyncGraphDatabase.driver(
                self.settings.uri,
                auth=self.settings.auth,
                connection_timeout=5.0,
                max_transaction_retry_time=5.0,
            )
        return self._driver

    async def ensure_schema(self) -> None:
        for statement in SCHEMA:
            await self.driver.execute_query(statement)
        await self.driver.execute_query(
            "CREATE INDEX chunk_position IF NOT EXISTS FOR (c:Chunk) ON (c.doc_id, c.chunk_index)"
        )

    async def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        if not chunks:
            return
        rows = [_row(c) for c in chunks]
        await self.driver.execute_query(UPSERT, rows=rows)

    async def neighbours(self, chunk_ids: Sequence[str], per_chunk: int) -> list[Hit]:
        if not chunk_ids:
            return []
        result = await self.driver.execute_query(
            NEIGHBOURS, ids=list(chunk_ids), per_chunk=per_chunk
        )
        return [
            Hit(
                chunk_id=r["chunk_id"],
                doc_id=r["doc_id"],
                index=int(r["idx"]),
                text=r["text"] or "",
                score=0.0,
                correlation_id=r["correlation_id"] or "",
                retriever="graph",
                title=r["title"] or "",
            )
            for r in result.records
        ]

    async def ping(self) -> None:
        await self.driver.execute_query("RETURN 1")

    async def close(self) -> None:
        if self._driver is not None:
            await self._driver.close()
            self._driver = None


def _row(chunk: IndexedChunk) -> dict[str, Any]:
    return {
        "chunk_id": chunk.chunk_id,
        "doc_id": chunk.doc_id,
        "index": chunk.index,
        "chunk_count": chunk.chunk_count,
        "version": chunk.version,
        "title": chunk.title,
        "text": chunk.text,
        "source": chunk.source,
        "correlation_id": chunk.correlation_id,
    }
