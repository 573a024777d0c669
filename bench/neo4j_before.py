"""The Neo4j live path as it was before issue 18 (MERGE of every node and
edge, one statement per kind, entities merged per mention): kept for
`bench.sinks` only, so it prints the old cost next to the new from the same
run, on the same graph. Nothing in the runtime uses it."""

from __future__ import annotations

from neo4j import AsyncManagedTransaction

from core.types import WritePlan
from sinks.neo4j.entities import extract_entities
from sinks.neo4j.rows import chunk_row

# A deleted document's chunks go, with every edge they had. The document node
# goes too, unless another document still links to it: then it stays as a
# placeholder, as if it had been linked before it existed.
DELETE_DOCUMENTS = """
UNWIND $doc_ids AS id
MATCH (d:Document {doc_id: id, gen: $gen})
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

# NEXT edges are merged from both sides of a pair: whichever chunk of a pair
# arrives second links them, so the order of arrival does not matter.
UPSERT_CHUNKS = """
UNWIND $rows AS row
MERGE (d:Document {doc_id: row.doc_id, gen: $gen})
  SET d.title = row.title, d.source = row.source, d.version = row.version,
      d.correlation_id = row.correlation_id, d.placeholder = false
MERGE (c:Chunk {chunk_id: row.chunk_id, gen: $gen})
  SET c.doc_id = row.doc_id, c.chunk_index = row.index, c.chunk_count = row.chunk_count,
      c.text = row.text, c.version = row.version, c.correlation_id = row.correlation_id
MERGE (d)-[:HAS_CHUNK]->(c)
WITH c, row
OPTIONAL MATCH (prev:Chunk {doc_id: row.doc_id, gen: $gen, chunk_index: row.index - 1})
OPTIONAL MATCH (next:Chunk {doc_id: row.doc_id, gen: $gen, chunk_index: row.index + 1})
FOREACH (p IN CASE WHEN prev IS NULL THEN [] ELSE [prev] END | MERGE (p)-[:NEXT]->(c))
FOREACH (n IN CASE WHEN next IS NULL THEN [] ELSE [next] END | MERGE (c)-[:NEXT]->(n))
"""

# A version's links replace the previous version's. A target that does not
# exist yet becomes a placeholder that its own first event fills in.
REPLACE_LINKS = """
UNWIND $docs AS doc
MATCH (d:Document {doc_id: doc.doc_id, gen: $gen})
OPTIONAL MATCH (d)-[old:LINKS_TO]->()
DELETE old
WITH DISTINCT d, doc
UNWIND doc.links AS target
MERGE (t:Document {doc_id: target, gen: $gen})
  ON CREATE SET t.placeholder = true
MERGE (d)-[:LINKS_TO]->(t)
"""

REPLACE_MENTIONS = """
UNWIND $chunks AS row
MATCH (c:Chunk {chunk_id: row.chunk_id, gen: $gen})
OPTIONAL MATCH (c)-[old:MENTIONS]->()
DELETE old
WITH DISTINCT c, row
UNWIND row.entities AS name
MERGE (e:Entity {key: toLower(name), gen: $gen})
  ON CREATE SET e.name = name
MERGE (c)-[:MENTIONS]->(e)
"""

DROP_ORPHANS = """
UNWIND $counts AS row
MATCH (c:Chunk {doc_id: row.doc_id, gen: $gen})
WHERE c.chunk_index >= row.count
DETACH DELETE c
"""


ACTIVE = """
OPTIONAL MATCH (g:DocstreamGraph {name: $graph})
RETURN coalesce(g.active, $graph + ':0') AS gen
"""


async def apply_before(tx: AsyncManagedTransaction, plan: WritePlan, graph: str) -> None:
    """The old `_apply` of the live (unpinned) store: the active generation
    read in the write's transaction, then one statement per kind."""
    gen = (await (await tx.run(ACTIVE, graph=graph)).single(strict=True))["gen"]
    if plan.deletions:
        await tx.run(DELETE_DOCUMENTS, doc_ids=[d.doc_id for d in plan.deletions], gen=gen)
    if plan.upserts:
        await tx.run(UPSERT_CHUNKS, rows=[chunk_row(c) for c in plan.upserts], gen=gen)
        links = {c.doc_id: c.links for c in plan.upserts}
        docs = [{"doc_id": d, "links": ls} for d, ls in links.items()]
        await tx.run(REPLACE_LINKS, docs=docs, gen=gen)
        mentions = [
            {"chunk_id": c.chunk_id, "entities": extract_entities(c.text)} for c in plan.upserts
        ]
        await tx.run(REPLACE_MENTIONS, chunks=mentions, gen=gen)
    if plan.chunk_counts:
        counts = [{"doc_id": d, "count": n} for d, n in plan.chunk_counts.items()]
        await tx.run(DROP_ORPHANS, counts=counts, gen=gen)
