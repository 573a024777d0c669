"""Generations of the graph in Neo4j: which one queries and the live sink use,
which one a rebuild is filling, and the switch between them.

One node per deployment holds the state:

    (:DocstreamGraph {name: "docstream", active: "docstream:0",
                      building: "docstream:1", next: 2})

Switching is one write to that node, so it is atomic for every statement that
reads `active` (each query and each sink write reads it in its own statement).

Each generation's profile (the model, vector dimension and chunking that made
it) is a node of its own, written before the switch and read back when a
worker starts:

    (:DocstreamProfile {graph: "docstream", gen: "docstream:1", model: "…",
                        dimension: 384, max_tokens: 256, overlap_tokens: 32})
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.types import GenerationState

if TYPE_CHECKING:  # the store builds its generations too (adopt_untagged): no cycle at run time
    from sinks.neo4j.store import Neo4jGraphStore

STATE = """
OPTIONAL MATCH (g:DocstreamGraph {name: $graph})
RETURN coalesce(g.active, $graph + ':0') AS active, g.building AS building
"""

# A rebuild resumes the generation it had begun; otherwise it takes the next number.
BEGIN = """
MERGE (g:DocstreamGraph {name: $graph})
  ON CREATE SET g.active = $graph + ':0', g.next = 1
WITH g, g.building IS NULL AS fresh, coalesce(g.next, 1) AS number
SET g.building = CASE WHEN fresh THEN $graph + ':' + toString(number) ELSE g.building END,
    g.next = CASE WHEN fresh THEN number + 1 ELSE number END
RETURN g.building AS building
"""

ACTIVATE = """
MERGE (g:DocstreamGraph {name: $graph})
WITH g, coalesce(g.active, $graph + ':0') AS previous
SET g.active = $gen, g.building = null
RETURN previous
"""

ABANDON = """
MATCH (g:DocstreamGraph {name: $graph})
SET g.building = null
"""

DROP = """
MATCH (n:Document|Chunk|Entity) WHERE n.gen = $gen
CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS
"""

# Nodes written before generations existed become this graph's generation 0.
ADOPT = """
MATCH (n:Document|Chunk|Entity) WHERE n.gen IS NULL
CALL (n) { SET n.gen = $graph + ':0' } IN TRANSACTIONS OF 5000 ROWS
"""

RECORD_PROFILE = """
MERGE (p:DocstreamProfile {graph: $graph, gen: $gen})
SET p += $profile
"""

PROFILE = """
MATCH (p:DocstreamProfile {graph: $graph, gen: $gen})
RETURN properties(p) AS profile
"""

DROP_PROFILE = """
MATCH (p:DocstreamProfile {graph: $graph, gen: $gen})
DELETE p
"""

SIZE = """
OPTIONAL MATCH (c:Chunk) WHERE c.gen = $gen
WITH count(c) AS chunks
OPTIONAL MATCH (d:Document) WHERE d.gen = $gen AND NOT coalesce(d.placeholder, false)
RETURN chunks, count(d) AS documents
"""


class GraphGenerations:
    """`core.types.Generations` of the graph, over the store's public statements
    (which map the driver's errors to the contract)."""

    def __init__(self, store: Neo4jGraphStore) -> None:
        self.store = store
        self.graph = store.settings.graph

    async def state(self) -> GenerationState:
        record = (await self.store.query(STATE, graph=self.graph))[0]
        return GenerationState(record["active"], record["building"])

    async def begin(self) -> str:
        """The generation a rebuild fills: the one left unfinished, or a new one."""
        records = await self.store.query(BEGIN, graph=self.graph)
        return str(records[0]["building"])

    async def activate(self, gen: str) -> str:
        """Make `gen` the one everything reads and writes; returns the previous one."""
        records = await self.store.query(ACTIVATE, graph=self.graph, gen=gen)
        return str(records[0]["previous"])

    async def abandon(self) -> None:
        """Forget the unfinished generation and delete what it holds."""
        building = (await self.state()).building
        await self.store.query(ABANDON, graph=self.graph)
        if building is not None:
            await self.drop(building)

    async def drop(self, gen: str) -> None:
        if gen == (await self.state()).active:
            raise ValueError(f"refusing to drop {gen}: it is the active generation")
        await self.store.run_auto_commit(DROP, gen=gen)
        await self.store.query(DROP_PROFILE, graph=self.graph, gen=gen)

    async def record_profile(self, gen: str, profile: dict[str, Any]) -> None:
        await self.store.query(RECORD_PROFILE, graph=self.graph, gen=gen, profile=profile)

    async def profile_of(self, gen: str) -> dict[str, Any] | None:
        records = await self.store.query(PROFILE, graph=self.graph, gen=gen)
        if not records:
            return None
        stored = dict(records[0]["profile"])
        return {k: v for k, v in stored.items() if k not in ("graph", "gen")}

    async def adopt_untagged(self) -> None:
        await self.store.run_auto_commit(ADOPT, graph=self.graph)

    async def size(self, gen: str) -> dict[str, int]:
        record = (await self.store.query(SIZE, gen=gen))[0]
        return {"chunks": int(record["chunks"]), "documents": int(record["documents"])}
