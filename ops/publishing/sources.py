"""Where documents to publish come from: text/markdown/HTML files, folders,
JSONL files, and stdin (JSONL). Each yields DocumentEvents or a reason why not."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar, TextIO

from schemas.events import DocumentEvent, InvalidEvent, now_millis

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst", ".text"}
HTML_SUFFIXES = {".html", ".htm"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}


@dataclass(frozen=True)
class Rejected:
    """An input that could not become a document, and why (a failure)."""

    source: str
    reason: str


@dataclass(frozen=True)
class Skipped:
    """An input left out on purpose (a folder's image, say): not a failure."""

    source: str
    reason: str


Item = DocumentEvent | Rejected | Skipped


class _TextOfHtml(HTMLParser):
    SKIP: ClassVar[frozenset[str]] = frozenset({"script", "style", "head"})

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.title = ""
        self._skipping = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self._skipping += tag in self.SKIP
        self._in_title = tag == "title"
        if tag in {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "section", "article"}:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        self._skipping -= tag in self.SKIP and self._skipping > 0
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data.strip()
        elif not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> tuple[str, str]:
    parser = _TextOfHtml()
    parser.feed(html)
    text = "".join(parser.parts)
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n")]
    return parser.title, "\n\n".join(p for p in paragraphs if p)


def _title_of(text: str, fallback: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:200]
    return fallback


def document_from_file(path: Path, doc_id: str) -> DocumentEvent:
    """One file, one document. Its version is the file's modification time, so
    republishing an unchanged file repeats the same version (harmless: the
    pipeline skips versions it has seen)."""
    raw = path.read_text(encoding="utf-8")
    if path.suffix.lower() in HTML_SUFFIXES:
        title, text = html_to_text(raw)
        content_type = "text/html"
    else:
        title, text = "", raw
        content_type = (
            "text/markdown" if path.suffix.lower() in {".md", ".markdown"} else "text/plain"
        )
    return DocumentEvent(
        doc_id=doc_id,
        version=path.stat().st_mtime_ns // 1_000_000,
        occurred_at=now_millis(),
        title=title or _title_of(text, path.stem),
        text=text,
        source=str(path),
        content_type=content_type,
    )


def document_from_json(row: dict[str, Any], fallback_id: str) -> DocumentEvent:
    if not isinstance(row, dict):
        raise InvalidEvent("each line must be a JSON object")
    values = {k: v for k, v in row.items() if k in DocumentEvent.__dataclass_fields__}
    unknown = sorted(set(row) - set(values) - {"_id"})
    if unknown:
        raise InvalidEvent(f"unknown fields {unknown}")
    values.setdefault("doc_id", str(row.get("_id") or fallback_id))
    values.setdefault("version", now_millis())
    values.setdefault("occurred_at", now_millis())
    if "metadata" in values:
        values["metadata"] = {str(k): str(v) for k, v in dict(values["metadata"]).items()}
    try:
        return DocumentEvent(**values)
    except TypeError as exc:
        raise InvalidEvent(str(exc)) from exc


def read_jsonl(stream: TextIO, name: str) -> Iterator[Item]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            yield document_from_json(json.loads(line), fallback_id=where)
        except (json.JSONDecodeError, InvalidEvent, ValueError) as exc:
            yield Rejected(where, str(exc))


SUPPORTED = TEXT_SUFFIXES | HTML_SUFFIXES | JSONL_SUFFIXES


def delete_events(doc_ids: Iterable[str]) -> Iterator[Item]:
    for doc_id in doc_ids:
        try:
            now = now_millis()
            yield DocumentEvent(doc_id=doc_id, version=now, occurred_at=now, op="DELETE")
        except InvalidEvent as exc:
            yield Rejected(doc_id or "(empty id)", str(exc))


def read_path(path: Path, pattern: str = "*") -> Iterator[Item]:
    """Documents from one CLI argument: a file, a folder (recursive) or `-` (stdin)."""
    if str(path) == "-":
        yield from read_jsonl(sys.stdin, "stdin")
        return
    if path.is_dir():
        for file in sorted(path.rglob(pattern)):
            if not file.is_file():
                continue
            if file.suffix.lower() not in SUPPORTED:
                yield Skipped(str(file), f"unsupported file type {file.suffix or '(none)'}")
                continue
            yield from _read_file(file, file.relative_to(path).as_posix())
        return
    if not path.exists():
        yield Rejected(str(path), "no such file or folder")
        return
    yield from _read_file(path, path.name)


def _read_file(path: Path, doc_id: str) -> Iterator[Item]:
    try:
        if path.suffix.lower() in JSONL_SUFFIXES:
            with path.open(encoding="utf-8") as stream:
                yield from read_jsonl(stream, str(path))
        else:
            yield document_from_file(path, doc_id)
    except (OSError, UnicodeDecodeError, InvalidEvent) as exc:
        yield Rejected(str(path), f"{type(exc).__name__}: {exc}")
