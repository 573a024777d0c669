"""The live sink's write of one batch (a `WritePlan`) into one generation of
the graph, priced per chunk rather than per entity's degree.

A chunk's edges are the ones its latest version makes: so the write's parts
first remove the relationships of every chunk and document in the batch
(walked from the chunk's or the document's side, a handful each), then
CREATE the new ones. No MERGE on a relationship looks through an Entity's
thousands of MENTIONS, or a Document's incoming links, to find the edge that
was just deleted. What several chunks share is written once per batch: a
document's properties and links once per document, an entity node once per
batch (aggregated in Python, `rows.py`), each with the chunks that mention it.

Idempotent: replaying a batch deletes and recreates the same edges and sets
the same properties, so the graph is the same (edge ids aside). Ordered: the
plan holds each chunk's final state in the batch, and the parts run in the
plan's order (deletions, upserts, orphans) in one statement, one transaction.
Every part is scoped to the generation the statement chose, and every lookup
goes through a constraint's or an index's composite key that includes it.

The graph is the one `bulk.py` creates in an empty generation, node for node
and edge for edge."""

from __future__ import annotations

from typing import Any

from neo4j import AsyncManagedTransaction

from core.types import WritePlan
from sinks.neo4j.rows import document_rows, entity_rows, link_rows, next_rows

# The statement opens by choosing its generation: the pinned one, else the
# active one, read in the write's own transaction (a write that began before a
# switch lands in the old generation, and the rebuild's final drain repeats
# it). Each part below is one CALL on that `gen`, run in this order; an empty
# list of rows makes its part a no-op.
GENERATION = """
OPTIONAL MATCH (g:DocstreamGraph {name: $graph})
WITH coalesce($gen, g.active, $graph + ':0') AS gen
"""

# A deleted document's chunks go, with every edge they had. The document node
# goes too, unless another document still links to it: then it stays as a
# placeholder, as if it had been linked before it existed.
DELETE_DOCUMENTS = """
UNWIND $rows.doc_ids AS id
MATCH (d:Document {doc_id: id, gen: gen})
OPTIONAL MATCH (d)-[:HAS_CHUNK]->(c:Chunk)
DETACH DELETE c
WITH DISTINCT d
OPTIONAL MATCH (d)-[out:LINKS_TO]->()
DELETE out
WITH DISTINCT d, EXISTS { ()-[:LINKS_TO]->(d) } AS linked
FOREACH (_ IN CASE WHEN linked THEN [1] ELSE [] END |
  SET d.placeholder = true
  REMOVE d.title, d.source, d.version, d.correlation_id)
WITH d, linked WHERE NOT linked
DETACH DELETE d
"""

# One row per document, its chunks with it. A document's outgoing links and a
# chunk's NEXT and MENTIONS edges are removed here, from their own side, and
# created again by the parts below: a version's edges replace the last's.
UPSERT_DOCUMENTS = """
UNWIND $rows.docs AS doc
MERGE (d:Document {doc_id: doc.doc_id, gen: gen})
  SET d.title = doc.title, d.source = doc.source, d.version = doc.version,
      d.correlation_id = doc.correlation_id, d.placeholder = false
WITH d, doc
CALL (d) {
  MATCH (d)-[old:LINKS_TO]->()
  DELETE old
}
UNWIND doc.chunks AS row
MERGE (c:Chunk {chunk_id: row.chunk_id, gen: gen})
  SET c.doc_id = doc.doc_id, c.chunk_index = row.index, c.chunk_count = row.chunk_count,
      c.text = row.text, c.version = row.version, c.correlation_id = row.correlation_id
MERGE (d)-[:HAS_CHUNK]->(c)
WITH c
CALL (c) {
  MATCH (c)-[old:NEXT|MENTIONS]-()
  DELETE old
}
"""

# Each batch chunk gets the edge from the chunk before it, and the edge to the
# chunk after it unless that one is in the batch too (its own row makes the
# edge): every edge is created once, whichever chunk of a pair came first.
CREATE_NEXT = """
UNWIND $rows.chunks AS row
MATCH (c:Chunk {chunk_id: row.chunk_id, gen: gen})
CALL (c, row, gen) {
  MATCH (p:Chunk {doc_id: row.doc_id, gen: gen, chunk_index: row.index - 1})
  CREATE (p)-[:NEXT]->(c)
}
CALL (c, row, gen) {
  MATCH (n:Chunk {doc_id: row.doc_id, gen: gen, chunk_index: row.index + 1})
  WHERE NOT n.chunk_id IN $rows.ids
  CREATE (c)-[:NEXT]->(n)
}
"""

# A target that does not exist yet becomes a placeholder that its own first
# event fills in.
CREATE_LINKS = """
UNWIND $rows.links AS link
MATCH (d:Document {doc_id: link.source, gen: gen})
MERGE (t:Document {doc_id: link.target, gen: gen})
  ON CREATE SET t.placeholder = true
CREATE (d)-[:LINKS_TO]->(t)
"""

CREATE_MENTIONS = """
UNWIND $rows.entities AS entity
MERGE (e:Entity {key: entity.key, gen: gen})
  ON CREATE SET e.name = entity.name
WITH e, entity
UNWIND entity.chunk_ids AS id
MATCH (c:Chunk {chunk_id: id, gen: gen})
CREATE (c)-[:MENTIONS]->(e)
"""

DROP_ORPHANS = """
UNWIND $rows.counts AS row
MATCH (c:Chunk {doc_id: row.doc_id, gen: gen})
WHERE c.chunk_index >= row.count
DETACH DELETE c
"""

PARTS = (
    DELETE_DOCUMENTS,
    UPSERT_DOCUMENTS,
    CREATE_NEXT,
    CREATE_LINKS,
    CREATE_MENTIONS,
    DROP_ORPHANS,
)


def _statement(parts: tuple[str, ...]) -> str:
    calls = "".join(f"CALL (gen) {{{part}}}\n" for part in parts)
    return f"{GENERATION}{calls}RETURN gen"


# One statement per batch: on a live stream a batch is often a chunk or two,
# and each statement and round trip costs the server more than the rows do.
# The rows go as one map, `$rows`: Neo4j caches a plan per statement and
# parameter types, and an empty list is typed apart from a list of maps, so
# separate lists made a batch without links, entities or deletions a new
# statement to plan (0.6-0.7 s of CPU each, up to 2^7 of them).
# `replan=skip`: the plan made once is kept while the graph grows. Its
# lookups all go through unique constraints and composite indexes, so it
# stays the right plan at any size; without the option Neo4j planned this
# statement again every 10 s during an ingest (its statistics drift past the
# threshold), which cost more CPU than the writes themselves. A per-statement
# option rather than a server setting: nothing for an operator to remember.
WRITE = "CYPHER replan=skip\n" + _statement(PARTS)


def parameters(plan: WritePlan) -> dict[str, Any]:
    """WRITE's rows for a plan: each part's, empty where the plan has none."""
    chunks = plan.upserts
    return {
        "doc_ids": [d.doc_id for d in plan.deletions],
        "docs": document_rows(chunks),
        "chunks": next_rows(chunks),
        "ids": [c.chunk_id for c in chunks],
        "links": link_rows(chunks),
        "entities": entity_rows(chunks),
        "counts": [{"doc_id": d, "count": n} for d, n in plan.chunk_counts.items()],
    }


async def apply_plan(
    tx: AsyncManagedTransaction, plan: WritePlan, graph: str, pinned: str | None = None
) -> str:
    """The plan in one statement, inside the caller's transaction; returns the
    generation it wrote to."""
    result = await tx.run(WRITE, graph=graph, gen=pinned, rows=parameters(plan))
    record = await result.single(strict=True)
    return str(record["gen"])
