from schemas.events import DocumentEvent
from streams.state import Decision, DocumentState, dead_lettered, decide, next_state


def doc(version: int, op: str = "UPSERT") -> DocumentEvent:
    return DocumentEvent("d", version, 0, op=op, text="x")  # type: ignore[arg-type]


def state(version: int, content_hash: str = "h", status: str = "chunked") -> DocumentState:
    return DocumentState(version, content_hash, 2, status)


def test_a_new_document_is_indexed() -> None:
    assert decide(None, doc(1), "h") is Decision.INDEX


def test_older_and_equal_versions_are_stale() -> None:
    assert decide(state(5), doc(4), "other") is Decision.STALE
    assert decide(state(5), doc(5), "other") is Decision.STALE
    assert decide(state(5), doc(4, "DELETE"), "") is Decision.STALE


def test_same_content_in_a_newer_version_is_unchanged() -> None:
    assert decide(state(5, "h"), doc(6), "h") is Decision.UNCHANGED
    assert decide(state(5, "h"), doc(6), "new") is Decision.INDEX


def test_a_deleted_document_coming_back_is_indexed_even_with_the_old_content() -> None:
    deleted = next_state(state(5), doc(6, "DELETE"), Decision.DELETE, "", 0, "c")
    assert deleted.status == "deleted"
    assert decide(deleted, doc(7), "h") is Decision.INDEX


def test_unchanged_moves_the_version_forward_and_keeps_the_chunks() -> None:
    after = next_state(state(5), doc(6), Decision.UNCHANGED, "h", 0, "c")
    assert (after.version, after.chunk_count, after.content_hash) == (6, 2, "h")


def test_a_dead_letter_keeps_the_indexed_version_and_records_the_reason() -> None:
    failed = dead_lettered(state(5), "BadMarker: junk", "c9")
    assert (failed.version, failed.status, failed.reason) == (5, "dead_lettered", "BadMarker: junk")
    assert decide(failed, doc(5), "other") is Decision.STALE
    assert decide(dead_lettered(None, "x", "c"), doc(0), "h") is Decision.INDEX
