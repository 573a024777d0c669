"""Bulk writes into a fresh graph generation (`ops/jobs/bulk.py` decides what
is fresh): `UNWIND` + `CREATE` of whole batches, as Neo4j recommends for
loading an empty graph with its constraints in place.

The live path (`live.py`) MERGEs every node and replaces the edges of the
chunks it writes, since an event may be replayed. In a generation a rebuild
is filling, a document it has not written yet has no chunks, no links and no
mentions there, so its chunks and their edges are created outright; only the
nodes several documents share are merged: the document itself (a link may
have made it a placeholder) and the entities, which are aggregated per batch
so each is written once (`rows.py`, which the live path shares). Three
statements per batch, in one transaction: a batch lands whole or not at all.

The nodes and edges are the ones the live path makes, property for property."""

from __future__ import annotations

from typing import Any

from neo4j import AsyncManagedTransaction

from core.types import IndexedChunk
from sinks.neo4j.errors import mapped
from sinks.neo4j.rows import document_rows, entity_rows, link_rows
from sinks.neo4j.store import Neo4jGraphStore

__all__ = ["Neo4jBulk", "document_rows", "entity_rows", "link_rows"]

# Rows are one per document, its chunks in index order, so NEXT edges join
# neighbours in the list (the live path looks them up by index instead).
CREATE_DOCUMENTS = """
UNWIND $docs AS doc
MERGE (d:Document {doc_id: doc.doc_id, gen: $gen})
  SET d.title = doc.title, d.source = doc.source, d.version = doc.version,
      d.correlation_id = doc.correlation_id, d.placeholder = false
WITH d, doc
UNWIND doc.chunks AS row
CREATE (c:Chunk {chunk_id: row.chunk_id, gen: $gen})
  SET c.doc_id = doc.doc_id, c.chunk_index = row.index, c.chunk_count = row.chunk_count,
      c.text = row.text, c.version = row.version, c.correlation_id = row.correlation_id
CREATE (d)-[:HAS_CHUNK]->(c)
WITH doc, collect(c) AS chunks
UNWIND range(0, size(chunks) - 2) AS i
WITH chunks[i] AS a, chunks[i + 1] AS b
WHERE b.chunk_index = a.chunk_index + 1
CREATE (a)-[:NEXT]->(b)
"""


CREATE_LINKS = """
UNWIND $links AS link
MATCH (d:Document {doc_id: link.source, gen: $gen})
MERGE (t:Document {doc_id: link.target, gen: $gen})
  ON CREATE SET t.placeholder = true
CREATE (d)-[:LINKS_TO]->(t)
"""

CREATE_MENTIONS = """
UNWIND $entities AS entity
MERGE (e:Entity {key: entity.key, gen: $gen})
  ON CREATE SET e.name = entity.name
WITH e, entity
UNWIND entity.chunk_ids AS id
MATCH (c:Chunk {chunk_id: id, gen: $gen})
CREATE (c)-[:MENTIONS]->(e)
"""


class Neo4jBulk:
    """Creates documents the generation `store` is pinned to does not hold yet."""

    def __init__(self, store: Neo4jGraphStore) -> None:
        if store.generation is None:
            raise ValueError("bulk writes go to a pinned generation, never the active one")
        self.store = store
        self.generation = store.generation

    async def create(self, chunks: list[IndexedChunk]) -> None:
        if not chunks:
            return
        docs, links, entities = document_rows(chunks), link_rows(chunks), entity_rows(chunks)
        with mapped():
            async with self.store.driver.session() as session:
                await session.execute_write(self._create, docs, links, entities)

    async def _create(
        self,
        tx: AsyncManagedTransaction,
        docs: list[dict[str, Any]],
        links: list[dict[str, str]],
        entities: list[dict[str, Any]],
    ) -> None:
        gen = self.generation
        await (await tx.run(CREATE_DOCUMENTS, docs=docs, gen=gen)).consume()
        if links:
            await (await tx.run(CREATE_LINKS, links=links, gen=gen)).consume()
        if entities:
            await (await tx.run(CREATE_MENTIONS, entities=entities, gen=gen)).consume()
