"""How `GET /documents/{id}` decides a document's status from its state and
the two stores' counts (api/status.py)."""

from __future__ import annotations

from api.status import overall

CHUNKED = {"status": "chunked", "chunk_count": 3}


def test_indexed_means_each_store_holds_exactly_the_chunks_the_chunker_cut() -> None:
    assert overall(CHUNKED, (3, 3), (3, 3)) == "indexed"
    assert overall(CHUNKED, (2, 2), (3, 3)) == "indexing", "a store still writing"
    assert overall(CHUNKED, (4, 3), (3, 3)) == "indexing", "an orphan of an older version"


def test_after_a_replay_recut_it_the_stores_must_agree_with_each_other() -> None:
    # The state's count is of the old chunker: the replay's count is what the stores hold.
    assert overall(CHUNKED, (5, 5), (5, 5), current=False) == "indexed"
    assert overall(CHUNKED, (5, 5), (4, 4), current=False) == "indexing"
    assert overall(CHUNKED, (6, 5), (6, 5), current=False) == "indexing"
    assert overall(CHUNKED, (0, 0), (0, 0), current=False) == "indexing"


def test_deleted_and_dead_lettered() -> None:
    assert overall({"status": "deleted", "chunk_count": 0}, (0, 0), (0, 0)) == "deleted"
    assert overall({"status": "deleted", "chunk_count": 0}, (1, 0), (0, 0)) == "deleting"
    assert overall({"status": "dead_lettered", "chunk_count": 0}, (0, 0), (0, 0)) == "dead_lettered"
