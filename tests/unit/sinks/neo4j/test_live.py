"""The live write's one statement and its parameters: the plan's order
(deletions, upserts, orphans), the generation it writes to, what is written
once per batch (documents, links, entities), and no edge MERGEd where it was
just removed. (The statement itself runs against the real Neo4j in
tests/integration/test_graph_live.py.)"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from core.types import DocumentDeletion, IndexedChunk, WritePlan
from sinks.neo4j import live
from sinks.neo4j.rows import chunk_row, next_rows


def chunk(doc: str, index: int, text: str = "plain words", **more: Any) -> IndexedChunk:
    return IndexedChunk(
        chunk_id=f"{doc}-{index}",
        doc_id=doc,
        version=more.pop("version", 1),
        index=index,
        chunk_count=more.pop("count", 2),
        title=f"title of {doc}",
        text=text,
        vector=[0.1],
        correlation_id="cid",
        **more,
    )


class Result:
    async def single(self, strict: bool = False) -> dict[str, str]:
        return {"gen": "g:1"}


class RecordingTx:
    def __init__(self) -> None:
        self.runs: list[tuple[str, dict[str, Any]]] = []

    async def run(self, statement: str, **params: Any) -> Result:
        self.runs.append((statement, params))
        return Result()


def test_a_batch_is_one_statement_in_the_plans_order() -> None:
    """Deletions, then upserts (nodes first, then their edges), then orphans:
    one statement and one round trip, whatever the batch holds."""
    order = [live.WRITE.index(part) for part in live.PARTS]
    assert order == sorted(order)
    assert live.PARTS[0] is live.DELETE_DOCUMENTS and live.PARTS[-1] is live.DROP_ORPHANS
    assert live.WRITE.startswith("CYPHER replan=skip\n" + live.GENERATION)


def test_the_write_keeps_its_plan_and_its_parameters_keep_their_shape() -> None:
    """A stable plan: the statement says so itself, and a batch of any content
    passes the same parameters (empty lists where it has nothing)."""
    assert live.WRITE.splitlines()[0] == "CYPHER replan=skip"
    empty = live.parameters(WritePlan())
    full = live.parameters(WritePlan(upserts=[chunk("a", 0, count=1)], chunk_counts={"a": 1}))
    assert set(empty) == set(full)
    assert all(isinstance(v, list) for v in (*empty.values(), *full.values()))
    # One map parameter: Neo4j types an empty list apart from a list of maps,
    # and would plan the statement again for each combination.
    tx = RecordingTx()
    asyncio.run(live.apply_plan(tx, WritePlan(), "docstream"))  # type: ignore[arg-type]
    assert set(tx.runs[0][1]) == {"graph", "gen", "rows"}
    assert not re.search(r"\$(?!rows\.|graph\b|gen\b)", live.WRITE), "every row list is in $rows"


def test_the_write_goes_to_the_pinned_generation_or_reads_the_active_one() -> None:
    tx = RecordingTx()
    plan = WritePlan(upserts=[chunk("a", 0, count=1)], chunk_counts={"a": 1})
    gen = asyncio.run(live.apply_plan(tx, plan, "docstream"))  # type: ignore[arg-type]
    asyncio.run(live.apply_plan(tx, plan, "docstream", "docstream:4"))  # type: ignore[arg-type]
    assert gen == "g:1"
    assert [(s, p["graph"], p["gen"]) for s, p in tx.runs] == [
        (live.WRITE, "docstream", None),
        (live.WRITE, "docstream", "docstream:4"),
    ]
    assert "coalesce($gen, g.active, $graph + ':0')" in live.GENERATION


def test_a_plans_rows_hold_deletions_upserts_and_counts() -> None:
    plan = WritePlan(
        deletions=[DocumentDeletion("gone", 3, "cid")],
        upserts=[
            chunk("a", 0, "Ada Lovelace met Charles Babbage.", links=["b"]),
            chunk("a", 1, links=["b"]),
        ],
        chunk_counts={"a": 2},
    )
    params = live.parameters(plan)
    assert params["doc_ids"] == ["gone"]
    assert params["counts"] == [{"doc_id": "a", "count": 2}]
    assert params["links"] == [{"source": "a", "target": "b"}]
    assert [d["doc_id"] for d in params["docs"]] == ["a"]


def test_what_chunks_share_is_written_once_per_batch() -> None:
    plan = WritePlan(
        upserts=[
            chunk("a", 0, "Charles Babbage and the Analytical Engine.", links=["b", "b"]),
            chunk("a", 1, "Charles Babbage again.", links=["b", "b"]),
            chunk("c", 0, "Charles Babbage once more.", count=1),
        ],
        chunk_counts={"a": 2, "c": 1},
    )
    params = live.parameters(plan)
    assert [d["doc_id"] for d in params["docs"]] == ["a", "c"]
    assert params["docs"][0]["chunks"] == [
        chunk_row(chunk("a", 0, "Charles Babbage and the Analytical Engine.")),
        chunk_row(chunk("a", 1, "Charles Babbage again.")),
    ]
    assert params["links"] == [{"source": "a", "target": "b"}]
    babbage = [e for e in params["entities"] if e["key"] == "charles babbage"]
    assert babbage == [
        {"key": "charles babbage", "name": "Charles Babbage", "chunk_ids": ["a-0", "a-1", "c-0"]}
    ]


def test_the_next_part_knows_the_batch_so_each_edge_is_created_once() -> None:
    plan = WritePlan(upserts=[chunk("a", 1), chunk("a", 0)], chunk_counts={"a": 2})
    params = live.parameters(plan)
    assert params["chunks"] == next_rows(plan.upserts)
    assert params["chunks"][0] == {"chunk_id": "a-1", "doc_id": "a", "index": 1}
    assert params["ids"] == ["a-1", "a-0"]
    assert "WHERE NOT n.chunk_id IN $rows.ids" in live.CREATE_NEXT


def test_a_batch_of_deletions_alone_sends_no_rows_for_the_other_parts() -> None:
    params = live.parameters(WritePlan(deletions=[DocumentDeletion("gone", 2, "cid")]))
    assert params["doc_ids"] == ["gone"]
    assert not any(params[k] for k in ("docs", "chunks", "ids", "links", "entities", "counts"))


def test_the_live_parts_create_no_edge_with_merge() -> None:
    """Edges are removed from the chunk's side and created again: a MERGE on a
    MENTIONS edge would walk the entity's degree to find the one just removed."""
    for part in (live.CREATE_NEXT, live.CREATE_LINKS, live.CREATE_MENTIONS):
        assert "MERGE (c)-" not in part and "MERGE (p)-" not in part and "MERGE (d)-" not in part
        assert "CREATE (" in part
    assert "MERGE (d)-[:HAS_CHUNK]->(c)" in live.UPSERT_DOCUMENTS  # a chunk's one parent
