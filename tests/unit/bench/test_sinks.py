"""The sink-cost benchmark's report: each size's figure next to the old
path's from the same run, the growth from the smallest graph to the largest
and the Qdrant sink's figure, each with its target."""

from __future__ import annotations

from typing import Any

from bench.sinks import summary


def path(total: float, median: float) -> dict[str, float]:
    return {"neo4j_ms_per_chunk": total, "neo4j_median_batch_ms_per_chunk": median}


def size(n: int, after: float) -> dict[str, Any]:
    return {
        "size": n,
        "before": path(2.0, 1.5),
        "after": path(after + 0.1, after),
        "after_update": path(0.9, 0.8),
    }


def test_the_summary_prints_each_size_its_growth_and_the_qdrant_sink() -> None:
    record = {
        "neo4j": [size(10_000, 0.5), size(100_000, 0.6)],
        "qdrant": {"size": 10_000, "ms_per_chunk": 0.4},
    }
    rows = summary(record)
    assert rows[0][0].startswith("Neo4j live CPU/chunk at 10000 chunks")
    assert rows[0][1].startswith("0.600 / 0.500 ms") and rows[0][2].startswith("before 2.000")
    assert rows[2][1] == "+20%" and rows[2][3] == "within 20%"
    assert rows[3][1] == "0.400" and rows[3][3] == "<= 0.5"


def test_one_size_alone_has_no_growth_row() -> None:
    rows = summary({"neo4j": [size(10_000, 0.5)]})
    assert len(rows) == 1
