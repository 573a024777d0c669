from core.types import DocumentDeletion, IndexedChunk
from sinks.plan import plan_writes


def chunk(doc: str, index: int, version: int = 1, count: int = 2) -> IndexedChunk:
    return IndexedChunk(f"{doc}-{version}-{index}", doc, version, index, count, "", "t", [0.0], "c")


def test_chunks_of_one_version_are_upserted_with_its_count() -> None:
    plan = plan_writes([chunk("a", 0), chunk("a", 1), chunk("b", 0, count=1)])
    assert [c.chunk_id for c in plan.upserts] == ["a-1-0", "a-1-1", "b-1-0"]
    assert plan.chunk_counts == {"a": 2, "b": 1}
    assert plan.deletions == []


def test_a_delete_cancels_earlier_chunks_of_the_batch() -> None:
    plan = plan_writes([chunk("a", 0), DocumentDeletion("a", 2, "c"), chunk("b", 0, count=1)])
    assert [d.doc_id for d in plan.deletions] == ["a"]
    assert [c.doc_id for c in plan.upserts] == ["b"]
    assert "a" not in plan.chunk_counts


def test_a_document_recreated_after_its_delete_is_deleted_then_written() -> None:
    plan = plan_writes([DocumentDeletion("a", 2, "c"), chunk("a", 0, version=3, count=1)])
    assert [d.doc_id for d in plan.deletions] == ["a"]
    assert [c.chunk_id for c in plan.upserts] == ["a-3-0"]
    assert plan.chunk_counts == {"a": 1}


def test_a_newer_version_replaces_an_older_one_and_sets_the_orphan_line() -> None:
    plan = plan_writes([chunk("a", 0, 1, 3), chunk("a", 1, 1, 3), chunk("a", 0, 2, 1)])
    assert [c.chunk_id for c in plan.upserts] == ["a-2-0"]
    assert plan.chunk_counts == {"a": 1}


def test_a_late_older_version_changes_nothing() -> None:
    plan = plan_writes([chunk("a", 0, 2, 1), chunk("a", 0, 1, 3)])
    assert [c.chunk_id for c in plan.upserts] == ["a-2-0"]
    assert plan.chunk_counts == {"a": 1}
