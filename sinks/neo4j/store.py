"""Neo4j as the graph store:

    (:Document)-[:HAS_CHUNK]->(:Chunk)-[:NEXT]->(:Chunk)     reading order
    (:Document)-[:LINKS_TO]->(:Document)                    citations (`links`)
    (:Chunk)-[:MENTIONS]->(:Entity)                         rule-based entities

Written by `live.py`: one statement and one transaction per batch, each
chunk's edges replaced by its latest version's, so a replayed event changes
nothing.

Every node carries `gen`, the generation of the graph it belongs to (for
example `docstream:0`). Community edition has one user database, so a rebuild
writes a new generation beside the active one and switches by updating one
node (`sinks/neo4j/generations.py`); every statement here and in `live.py` is
scoped to one generation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from neo4j import (
    READ_ACCESS,
    AsyncDriver,
    AsyncGraphDatabase,
    AsyncManagedTransaction,
    Record,
    TrustCustomCAs,
)

from core.settings import Neo4jSettings
from core.types import Hit, Neighbour, WritePlan
from sinks.neo4j.errors import mapped
from sinks.neo4j.generations import GraphGenerations
from sinks.neo4j.live import apply_plan
from sinks.neo4j.rows import chunk_row

SCHEMA = (
    # Before generations, ids were unique on their own: those constraints go.
    "DROP CONSTRAINT document_id IF EXISTS",
    "DROP CONSTRAINT chunk_id IF EXISTS",
    "DROP CONSTRAINT entity_key IF EXISTS",
    "DROP INDEX chunk_position IF EXISTS",
    "CREATE CONSTRAINT document_gen_id IF NOT EXISTS FOR (d:Document) "
    "REQUIRE (d.doc_id, d.gen) IS UNIQUE",
    "CREATE CONSTRAINT chunk_gen_id IF NOT EXISTS FOR (c:Chunk) "
    "REQUIRE (c.chunk_id, c.gen) IS UNIQUE",
    "CREATE CONSTRAINT entity_gen_key IF NOT EXISTS FOR (e:Entity) "
    "REQUIRE (e.key, e.gen) IS UNIQUE",
    "CREATE CONSTRAINT graph_name IF NOT EXISTS FOR (g:DocstreamGraph) REQUIRE g.name IS UNIQUE",
    "CREATE INDEX chunk_gen_position IF NOT EXISTS FOR (c:Chunk) "
    "ON (c.doc_id, c.gen, c.chunk_index)",
)

# Three kinds of neighbour for each seed chunk, each with a bounded fan-out:
# the chunks beside it (NEXT), chunks of documents that cite or are cited by
# its document (LINKS_TO), and chunks of other documents that mention the same
# entities (MENTIONS). `$edges` picks which kinds to follow. The generation is
# read in the same statement, so a query never mixes two generations.
#
# MENTIONS is weighed as IDF weighs terms: an entity that many chunks mention
# says little about any two of them. Of the seed's entities, only the
# $entities rarest with at most $max_degree mentions are followed (a node's
# degree is read from the node, not counted by walking its edges), and a
# neighbour scores the sum of 1/degree over the entities it shares. So the
# step reads at most $entities x $max_degree edges per seed, whatever the
# corpus's most common entity, where counting every chunk that shares any
# entity read them all (one entity of the SciFact graph has 11,000 mentions).
NEIGHBOURS = """
CYPHER replan=skip
OPTIONAL MATCH (g:DocstreamGraph {name: $graph})
WITH coalesce($gen, g.active, $graph + ':0') AS gen
UNWIND $ids AS id
MATCH (c:Chunk {chunk_id: id, gen: gen})
CALL (c) {
  MATCH (c)-[:NEXT]-(n:Chunk)
  WHERE 'next' IN $edges
  RETURN n, 'next' AS edge, 0 AS preference
  ORDER BY n.chunk_index LIMIT $per_edge
  UNION
  MATCH (c)<-[:HAS_CHUNK]-(:Document)-[:LINKS_TO]-(:Document)-[:HAS_CHUNK]->(n:Chunk)
  WHERE 'links_to' IN $edges
  RETURN n, 'links_to' AS edge, 1 AS preference
  ORDER BY n.chunk_index LIMIT $per_edge
  UNION
  MATCH (c)-[:MENTIONS]->(e:Entity)
  WHERE 'mentions' IN $edges
  WITH c, e, COUNT { (e)<-[:MENTIONS]-() } AS degree
  WHERE degree > 1 AND degree <= $max_degree
  WITH c, e, degree ORDER BY degree, e.key LIMIT $entities
  MATCH (e)<-[:MENTIONS]-(n:Chunk)
  WHERE n.doc_id <> c.doc_id
  WITH n, sum(1.0 / degree) AS weight
  RETURN n, 'mentions' AS edge, 2 AS preference
  ORDER BY weight DESC, n.chunk_id LIMIT $per_edge
}
WITH id, n, edge, preference, gen
WHERE NOT n.chunk_id IN $ids
MATCH (d:Document {doc_id: n.doc_id, gen: gen})
RETURN id AS seed, edge, n.chunk_id AS chunk_id, n.doc_id AS doc_id, n.chunk_index AS idx,
       n.text AS text, n.correlation_id AS correlation_id, d.title AS title
ORDER BY preference
"""
# An entity mentioned by more chunks than this is too common to relate two.
MENTIONS_MAX_DEGREE = 100
# How many of a seed's entities (the rarest) the step follows.
MENTIONS_ENTITIES = 4
EDGES = ("next", "links_to", "mentions")

COUNT = """
OPTIONAL MATCH (g:DocstreamGraph {name: $graph})
WITH coalesce($gen, g.active, $graph + ':0') AS gen
MATCH (c:Chunk {doc_id: $doc_id, gen: gen})
WHERE $version IS NULL OR c.version = $version
RETURN count(c) AS n
"""


def neighbour_parameters(
    graph: str,
    generation: str | None,
    chunk_ids: Sequence[str],
    per_edge: int,
    edges: Sequence[str] = EDGES,
) -> dict[str, Any]:
    """NEIGHBOURS' parameters, always of the same shape and types."""
    return {
        "ids": list(chunk_ids),
        "per_edge": per_edge,
        "edges": list(edges),
        "graph": graph,
        "gen": generation,
        "max_degree": MENTIONS_MAX_DEGREE,
        "entities": MENTIONS_ENTITIES,
    }


def trust_options(settings: Neo4jSettings) -> dict[str, Any]:
    """With NEO4J_CA_FILE (and a bolt:// or neo4j:// URI): encrypted, trusting
    that CA only. Otherwise the URI's scheme decides (`+s`: the system's CAs,
    `+ssc`: any certificate, none: plaintext)."""
    if settings.ca_file is None:
        return {}
    return {"encrypted": True, "trusted_certificates": TrustCustomCAs(str(settings.ca_file))}


class Neo4jGraphStore:
    """The graph of one generation: the active one (what the live sink and the
    queries use), or a pinned one (what a rebuild writes).

    Every public method raises only the contract's `StoreError`s for store
    failures (`sinks/neo4j/errors.py`)."""

    def __init__(self, settings: Neo4jSettings, generation: str | None = None) -> None:
        self.settings = settings
        self.generation = generation
        self._driver: AsyncDriver | None = None

    def pinned(self, generation: str) -> Neo4jGraphStore:
        """The same database, writing into `generation` whatever is active."""
        return Neo4jGraphStore(self.settings, generation)

    @property
    def driver(self) -> AsyncDriver:
        # Created on first use, inside the event loop that will use it.
        if self._driver is None:
            self._driver = AsyncGraphDatabase.driver(
                self.settings.uri,
                auth=self.settings.auth,
                **trust_options(self.settings),
                connection_timeout=5.0,
                max_transaction_retry_time=5.0,
                # Reading `active` before the first generation exists is expected,
                # not worth a warning per query.
                notifications_disabled_classifications=["UNRECOGNIZED"],
            )
        return self._driver

    async def query(self, statement: str, **params: Any) -> list[Record]:
        """The records of one statement in its own transaction."""
        with mapped():
            result = await self.driver.execute_query(statement, **params)
        return list(result.records)

    async def read_auto_commit(self, statement: str, **params: Any) -> list[Record]:
        """The records of one read in an implicit transaction: one round trip,
        where a managed one adds BEGIN and COMMIT (about 0.3 ms a query here).
        No retry: a query whose graph step fails answers `degraded`."""
        with mapped():
            async with self.driver.session(default_access_mode=READ_ACCESS) as session:
                result = await session.run(statement, **params)
                return [record async for record in result]

    async def run_auto_commit(self, statement: str, **params: Any) -> None:
        """One statement in an implicit (auto-commit) transaction, as
        `CALL … IN TRANSACTIONS` needs."""
        with mapped():
            async with self.driver.session() as session:
                result = await session.run(statement, **params)
                await result.consume()

    async def ensure_schema(self) -> None:
        drops = [s for s in SCHEMA if s.startswith("DROP")]
        for statement in drops:
            await self.query(statement)
        await GraphGenerations(self).adopt_untagged()
        for statement in SCHEMA[len(drops) :]:
            await self.query(statement)

    async def write(self, plan: WritePlan) -> None:
        """The whole plan in one transaction: a batch lands entirely or not at all."""
        with mapped():
            async with self.driver.session() as session:
                await session.execute_write(_apply, plan, self.generation, self.settings.graph)

    async def neighbours(
        self, chunk_ids: Sequence[str], per_edge: int, edges: Sequence[str] = EDGES
    ) -> list[Neighbour]:
        if not chunk_ids or not edges:
            return []
        records = await self.read_auto_commit(
            NEIGHBOURS,
            **neighbour_parameters(
                self.settings.graph, self.generation, chunk_ids, per_edge, edges
            ),
        )
        return [
            Neighbour(
                Hit(
                    chunk_id=r["chunk_id"],
                    doc_id=r["doc_id"],
                    index=int(r["idx"]),
                    text=r["text"] or "",
                    score=0.0,
                    correlation_id=r["correlation_id"] or "",
                    retriever="graph",
                    title=r["title"] or "",
                ),
                seed=r["seed"],
                edge=r["edge"],
            )
            for r in records
        ]

    async def count(self, doc_id: str, version: int | None = None) -> int:
        """Chunks of one document (of one version, if given)."""
        records = await self.query(
            COUNT,
            doc_id=doc_id,
            version=version,
            graph=self.settings.graph,
            gen=self.generation,
        )
        return int(records[0]["n"])

    async def ping(self) -> None:
        await self.query("RETURN 1")

    async def close(self) -> None:
        if self._driver is not None:
            driver, self._driver = self._driver, None
            with mapped():
                await driver.close()


async def _apply(
    tx: AsyncManagedTransaction, plan: WritePlan, pinned: str | None, graph: str
) -> None:
    await apply_plan(tx, plan, graph, pinned)


# The properties of a :Chunk node (the statements of `live.py` set them).
_row = chunk_row
