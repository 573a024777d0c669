"""The live write's statements and their parameters, against a recording
transaction: the plan's order (deletions, upserts, orphans), what is written
once per batch (documents, links, entities), and what a batch without links or
entities leaves out. (The statements themselves run against the real Neo4j in
tests/integration/test_graph_live.py.)"""

from __future__ import annotations

import asyncio
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


class Summary:
    pass


class Result:
    async def consume(self) -> Summary:
        return Summary()


class RecordingTx:
    def __init__(self) -> None:
        self.runs: list[tuple[str, dict[str, Any]]] = []

    async def run(self, statement: str, **params: Any) -> Result:
        self.runs.append((statement, params))
        return Result()


def applied(plan: WritePlan) -> list[tuple[str, dict[str, Any]]]:
    tx = RecordingTx()
    asyncio.run(live.apply_plan(tx, plan, "g:1"))  # type: ignore[arg-type]
    return tx.runs


def names(runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    by_text = {
        getattr(live, n): n
        for n in (
            "DELETE_DOCUMENTS",
            "UPSERT_DOCUMENTS",
            "CREATE_NEXT",
            "CREATE_LINKS",
            "CREATE_MENTIONS",
            "DROP_ORPHANS",
        )
    }
    return [by_text[statement] for statement, _ in runs]


def test_a_plan_runs_deletions_then_upserts_then_orphans_each_in_its_generation() -> None:
    plan = WritePlan(
        deletions=[DocumentDeletion("gone", 3, "cid")],
        upserts=[
            chunk("a", 0, "Ada Lovelace met Charles Babbage.", links=["b"]),
            chunk("a", 1, links=["b"]),
        ],
        chunk_counts={"a": 2},
    )
    runs = applied(plan)
    assert names(runs) == [
        "DELETE_DOCUMENTS",
        "UPSERT_DOCUMENTS",
        "CREATE_NEXT",
        "CREATE_LINKS",
        "CREATE_MENTIONS",
        "DROP_ORPHANS",
    ]
    assert all(params["gen"] == "g:1" for _, params in runs)
    assert runs[0][1]["doc_ids"] == ["gone"]
    assert runs[-1][1]["counts"] == [{"doc_id": "a", "count": 2}]


def test_what_chunks_share_is_written_once_per_batch() -> None:
    plan = WritePlan(
        upserts=[
            chunk("a", 0, "Charles Babbage and the Analytical Engine.", links=["b", "b"]),
            chunk("a", 1, "Charles Babbage again.", links=["b", "b"]),
            chunk("c", 0, "Charles Babbage once more.", count=1),
        ],
        chunk_counts={"a": 2, "c": 1},
    )
    params = dict(zip(names(runs := applied(plan)), (p for _, p in runs), strict=True))
    assert [d["doc_id"] for d in params["UPSERT_DOCUMENTS"]["docs"]] == ["a", "c"]
    assert params["UPSERT_DOCUMENTS"]["docs"][0]["chunks"] == [
        chunk_row(chunk("a", 0, "Charles Babbage and the Analytical Engine.")),
        chunk_row(chunk("a", 1, "Charles Babbage again.")),
    ]
    assert params["CREATE_LINKS"]["links"] == [{"source": "a", "target": "b"}]
    babbage = [e for e in params["CREATE_MENTIONS"]["entities"] if e["key"] == "charles babbage"]
    assert babbage == [
        {"key": "charles babbage", "name": "Charles Babbage", "chunk_ids": ["a-0", "a-1", "c-0"]}
    ]


def test_the_next_statement_knows_the_batch_so_each_edge_is_created_once() -> None:
    plan = WritePlan(upserts=[chunk("a", 1), chunk("a", 0)], chunk_counts={"a": 2})
    params = dict(zip(names(runs := applied(plan)), (p for _, p in runs), strict=True))
    assert params["CREATE_NEXT"]["chunks"] == next_rows(plan.upserts)
    assert params["CREATE_NEXT"]["chunks"][0] == {"chunk_id": "a-1", "doc_id": "a", "index": 1}
    assert params["CREATE_NEXT"]["ids"] == ["a-1", "a-0"]


def test_a_batch_without_links_or_entities_sends_no_statement_for_them() -> None:
    runs = applied(WritePlan(upserts=[chunk("a", 0, count=1)], chunk_counts={"a": 1}))
    assert names(runs) == ["UPSERT_DOCUMENTS", "CREATE_NEXT", "DROP_ORPHANS"]


def test_a_batch_of_deletions_alone_touches_no_chunk() -> None:
    runs = applied(WritePlan(deletions=[DocumentDeletion("gone", 2, "cid")]))
    assert names(runs) == ["DELETE_DOCUMENTS"]


def test_the_live_statements_create_no_edge_with_merge() -> None:
    """Edges are removed from the chunk's side and created again: a MERGE on a
    MENTIONS edge would walk the entity's degree to find the one just removed."""
    for statement in (live.CREATE_NEXT, live.CREATE_LINKS, live.CREATE_MENTIONS):
        assert "MERGE (c)-" not in statement and "MERGE (p)-" not in statement
        assert "CREATE (" in statement
    assert "MERGE (d)-[:HAS_CHUNK]->(c)" in live.UPSERT_DOCUMENTS  # a chunk's one parent
