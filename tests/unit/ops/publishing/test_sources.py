import io
import json
from pathlib import Path

import pytest

from ops.publishing.sources import (
    Rejected,
    Skipped,
    delete_events,
    html_to_text,
    read_jsonl,
    read_path,
)
from schemas.events import DocumentEvent


def test_a_folder_yields_its_text_files_with_stable_ids(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("# Title A\n\nBody a.")
    (tmp_path / "sub" / "b.txt").write_text("Body b.")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    items = list(read_path(tmp_path))
    docs = [d for d in items if isinstance(d, DocumentEvent)]
    assert [(d.doc_id, d.title) for d in docs] == [("a.md", "Title A"), ("sub/b.txt", "Body b.")]
    assert [s.source for s in items if isinstance(s, Skipped)] == [str(tmp_path / "image.png")]


def test_a_file_keeps_its_version_while_it_is_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text("same")
    first, again = next(read_path(path)), next(read_path(path))
    assert isinstance(first, DocumentEvent) and isinstance(again, DocumentEvent)
    assert first.version == again.version


def test_delete_events_are_deletes_with_fresh_versions() -> None:
    events = list(delete_events(["a", " "]))
    assert isinstance(events[0], DocumentEvent) and events[0].op == "DELETE"
    assert isinstance(events[1], Rejected)


def test_glob_filters_folder_files(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    assert [d.doc_id for d in read_path(tmp_path, "*.md")] == ["a.md"]  # type: ignore[union-attr]


def test_jsonl_rows_become_documents_and_bad_rows_are_rejected_with_the_line() -> None:
    rows = [
        json.dumps({"doc_id": "x", "text": "hello", "metadata": {"n": 1}}),
        "{not json",
        json.dumps({"doc_id": "y", "text": "t", "colour": "red"}),
        json.dumps({"_id": "z", "text": "from a BEIR corpus"}),
    ]
    items = list(read_jsonl(io.StringIO("\n".join(rows)), "in.jsonl"))
    assert isinstance(items[0], DocumentEvent) and items[0].metadata == {"n": "1"}
    assert isinstance(items[1], Rejected) and items[1].source == "in.jsonl:2"
    assert isinstance(items[2], Rejected) and "colour" in items[2].reason
    assert isinstance(items[3], DocumentEvent) and items[3].doc_id == "z"


def test_unreadable_and_missing_files_are_rejected_not_raised(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\xfa not utf-8")
    assert isinstance(next(read_path(bad)), Rejected)
    assert isinstance(next(read_path(tmp_path / "nope.md")), Rejected)


@pytest.mark.parametrize(
    "html",
    [
        "<html><head><title>T</title><style>x{}</style></head>"
        "<body><p>One.</p><script>bad()</script><p>Two.</p></body></html>"
    ],
)
def test_html_is_stripped_to_paragraphs(html: str) -> None:
    assert html_to_text(html) == ("T", "One.\n\nTwo.")
