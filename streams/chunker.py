"""Deterministic chunking that prefers paragraph and sentence boundaries.

Same text and settings always give the same chunks (and so the same chunk ids).
A chunk holds whole sentences up to `max_words`; a paragraph end closes a chunk
that is at least half full; the last `overlap_sentences` sentences of a chunk
open the next one so a fact that straddles a boundary is still findable; a
sentence longer than a whole chunk is cut at word boundaries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.ids import chunk_id
from core.settings import ChunkerSettings
from core.types import Chunk

_PARAGRAPH = re.compile(r"\n\s*\n")
# A sentence ends at . ! ? (or their CJK forms) followed by space or end of text.
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])[\"')\]]*\s+|(?<=[。！？])")
_WORD = re.compile(r"\S+")
# Scripts without spaces between words count characters instead of words.
_CHARS_PER_WORD = 6


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    words: int
    paragraph_end: bool


def _weight(text: str) -> int:
    words = len(_WORD.findall(text))
    return max(words, len(text) // (_CHARS_PER_WORD * 2)) if text.strip() else 0


def _sentences(text: str) -> list[_Span]:
    spans: list[_Span] = []
    for para in _paragraph_spans(text):
        start = para[0]
        pieces = [m.end() for m in _SENTENCE_END.finditer(text, para[0], para[1])]
        bounds = [b for b in pieces if b < para[1]] + [para[1]]
        for i, end in enumerate(bounds):
            piece = text[start:end]
            if piece.strip():
                lead = len(piece) - len(piece.lstrip())
                trail = len(piece) - len(piece.rstrip())
                spans.append(_Span(start + lead, end - trail, _weight(piece), i == len(bounds) - 1))
            start = end
    return spans


def _paragraph_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in _PARAGRAPH.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def _split_long(text: str, span: _Span, max_words: int) -> list[_Span]:
    """Cut a sentence longer than a chunk at word boundaries."""
    words = list(_WORD.finditer(text, span.start, span.end))
    if len(words) <= max_words:
        # Long only by character count (no spaces): cut by characters.
        size = max_words * _CHARS_PER_WORD * 2
        cuts = range(span.start, span.end, size)
        pieces = [_Span(s, min(s + size, span.end), max_words, False) for s in cuts]
    else:
        groups = [words[i : i + max_words] for i in range(0, len(words), max_words)]
        pieces = [_Span(g[0].start(), g[-1].end(), len(g), False) for g in groups]
    # The last piece still ends the sentence's paragraph.
    last = pieces[-1]
    pieces[-1] = _Span(last.start, last.end, last.words, span.paragraph_end)
    return pieces


class SentenceChunker:
    def __init__(self, settings: ChunkerSettings) -> None:
        if settings.max_words < 1:
            raise ValueError("max_words must be at least 1")
        self.max_words = settings.max_words
        self.overlap = max(0, settings.overlap_sentences)

    def chunk(self, doc_id: str, text: str) -> list[Chunk]:
        groups = self._group(text)
        return [
            Chunk(
                chunk_id(doc_id, i), doc_id, i, text[g[0].start : g[-1].end], g[0].start, g[-1].end
            )
            for i, g in enumerate(groups)
        ]

    def _group(self, text: str) -> list[list[_Span]]:
        units: list[_Span] = []
        for span in _sentences(text):
            units.extend(
                _split_long(text, span, self.max_words) if span.words > self.max_words else [span]
            )
        groups: list[list[_Span]] = []
        current: list[_Span] = []
        for unit in units:
            if current and sum(u.words for u in current) + unit.words > self.max_words:
                groups.append(current)
                current = self._carry(current, unit)
            current.append(unit)
            if unit.paragraph_end and sum(u.words for u in current) * 2 >= self.max_words:
                groups.append(current)
                current = []
        if current:
            groups.append(current)
        return groups

    def _carry(self, previous: list[_Span], incoming: _Span) -> list[_Span]:
        """The overlap sentences that open the next chunk, if they fit beside `incoming`."""
        if self.overlap == 0:
            return []
        tail = previous[-self.overlap :]
        if sum(u.words for u in tail) + incoming.words > self.max_words or len(tail) == len(
            previous
        ):
            return []
        return list(tail)
