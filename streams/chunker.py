"""Deterministic chunking that prefers paragraph and sentence boundaries, sized
in tokens of the embedding model's tokenizer.

Same text and settings always give the same chunks (and so the same chunk ids).
A chunk holds whole sentences up to `max_tokens` (never more than the model
reads, so the embedder truncates nothing); a paragraph end closes a chunk that
is at least half full; the last whole sentences of a chunk, up to
`overlap_tokens`, open the next one so a fact that straddles a boundary is still
findable. A sentence longer than a whole chunk is cut at word boundaries, and a
word longer than a chunk (text without spaces, such as CJK) at characters.

Sentences are counted in one batched tokenizer call per document; only a text
with over-long sentences costs more. A chunk's count is the sum of its
sentences' counts, which is exact for tokenizers that split at whitespace and
punctuation, as BERT's WordPiece does; pieces cut from inside a word are counted
on their own and never share a chunk with the piece before them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from itertools import pairwise

from core.ids import chunk_id
from core.logs import get_logger
from core.settings import ChunkerSettings
from core.types import Chunk
from streams.embedding.tokens import TokenCounter, TokenizerCounter

log = get_logger(__name__)

_PARAGRAPH = re.compile(r"\n\s*\n")
# A sentence ends at . ! ? (or their CJK forms) followed by space or end of text.
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])[\"')\]]*\s+|(?<=[。！？])")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    paragraph_end: bool


@dataclass(frozen=True)
class _Unit:
    """What chunks are packed from: a whole sentence or a piece of a long one."""

    start: int
    end: int
    tokens: int
    paragraph_end: bool = False
    sentence: bool = False  # only whole sentences are repeated as overlap
    glued: bool = False  # cut from inside a word: not in a chunk with the piece before it


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
                spans.append(_Span(start + lead, end - trail, i == len(bounds) - 1))
            start = end
    return spans


def _paragraph_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in _PARAGRAPH.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


class SentenceChunker:
    def __init__(self, settings: ChunkerSettings, counter: TokenCounter) -> None:
        self.counter = counter
        self.max_tokens = settings.max_tokens
        limit = counter.limit
        if limit is not None and self.max_tokens > limit:
            log.warning(
                "chunk max_tokens is more than the embedding model reads; capped",
                extra={"max_tokens": settings.max_tokens, "capped_to": limit},
            )
            self.max_tokens = limit
        self.overlap_tokens = settings.overlap_tokens

    @classmethod
    def for_model(cls, settings: ChunkerSettings, model: str) -> SentenceChunker:
        """A chunker counting with the tokenizer of `model`, the embedding model."""
        return cls(settings, TokenizerCounter.load(model))

    def chunk(self, doc_id: str, text: str) -> list[Chunk]:
        groups = self._group(self._units(text))
        return [
            Chunk(
                chunk_id(doc_id, i), doc_id, i, text[g[0].start : g[-1].end], g[0].start, g[-1].end
            )
            for i, g in enumerate(groups)
        ]

    def _units(self, text: str) -> list[_Unit]:
        spans = _sentences(text)
        counts = self.counter.count([text[s.start : s.end] for s in spans])
        long = [s for s, n in zip(spans, counts, strict=True) if n > self.max_tokens]
        cut = self._cut_sentences(text, long) if long else {}
        units: list[_Unit] = []
        for span, tokens in zip(spans, counts, strict=True):
            if tokens > self.max_tokens:
                units.extend(cut[span])
            else:
                units.append(_Unit(span.start, span.end, tokens, span.paragraph_end, True))
        return units

    def _cut_sentences(self, text: str, spans: list[_Span]) -> dict[_Span, list[_Unit]]:
        """Cut sentences longer than a chunk into pieces of whole words, each as
        full as the budget allows; a word longer than a chunk is cut at characters."""
        words = [
            [(m.start(), m.end()) for m in _WORD.finditer(text, s.start, s.end)] for s in spans
        ]
        flat = [w for ws in words for w in ws]
        counts = dict(zip(flat, self.counter.count([text[a:b] for a, b in flat]), strict=True))
        oversized = [(a, b, n) for (a, b), n in counts.items() if n > self.max_tokens]
        runs = self._cut_runs(text, oversized) if oversized else {}
        cut: dict[_Span, list[_Unit]] = {}
        for span, spans_of_words in zip(spans, words, strict=True):
            atoms: list[_Unit] = []
            for a, b in spans_of_words:
                if counts[(a, b)] > self.max_tokens:
                    atoms.extend(runs[(a, b)])
                else:
                    atoms.append(_Unit(a, b, counts[(a, b)]))
            pieces = self._pack(atoms)
            pieces[-1] = replace(pieces[-1], paragraph_end=span.paragraph_end)
            cut[span] = pieces
        return cut

    def _pack(self, atoms: list[_Unit]) -> list[_Unit]:
        pieces: list[_Unit] = []
        first, tokens = atoms[0], 0
        for i, atom in enumerate(atoms):
            if i and (tokens + atom.tokens > self.max_tokens or atom.glued):
                pieces.append(_Unit(first.start, atoms[i - 1].end, tokens, glued=first.glued))
                first, tokens = atom, 0
            tokens += atom.tokens
        pieces.append(_Unit(first.start, atoms[-1].end, tokens, glued=first.glued))
        return pieces

    def _cut_runs(
        self, text: str, runs: list[tuple[int, int, int]]
    ) -> dict[tuple[int, int], list[_Unit]]:
        """Cut runs without spaces into pieces of at most `max_tokens`, at
        characters: into as many equal parts as the count asks for, then again
        any part that still counts too many, one batched call per round."""
        found: dict[tuple[int, int], list[_Unit]] = {(a, b): [] for a, b, _ in runs}
        pending = [((a, b), a, b, n) for a, b, n in runs]
        while pending:
            parts: list[tuple[tuple[int, int], int, int]] = []
            for run, a, b, n in pending:
                k = min(b - a, -(-n // self.max_tokens))
                bounds = [a + (b - a) * i // k for i in range(k + 1)]
                parts.extend((run, s, e) for s, e in pairwise(bounds))
            counts = self.counter.count([text[s:e] for _, s, e in parts])
            pending = []
            for (run, s, e), n in zip(parts, counts, strict=True):
                if n <= self.max_tokens or e - s == 1:
                    found[run].append(_Unit(s, e, n, glued=s != run[0]))
                else:
                    pending.append((run, s, e, n))
        return {run: sorted(pieces, key=lambda u: u.start) for run, pieces in found.items()}

    def _group(self, units: list[_Unit]) -> list[list[_Unit]]:
        groups: list[list[_Unit]] = []
        current: list[_Unit] = []
        tokens = 0
        for unit in units:
            if current and (tokens + unit.tokens > self.max_tokens or unit.glued):
                groups.append(current)
                current = self._carry(current, unit)
                tokens = sum(u.tokens for u in current)
            current.append(unit)
            tokens += unit.tokens
            if unit.paragraph_end and tokens * 2 >= self.max_tokens:
                groups.append(current)
                current, tokens = [], 0
        if current:
            groups.append(current)
        return groups

    def _carry(self, previous: list[_Unit], incoming: _Unit) -> list[_Unit]:
        """The last whole sentences of `previous`, up to `overlap_tokens`, that fit
        beside `incoming`; never all of `previous`."""
        tail: list[_Unit] = []
        tokens = 0
        for unit in reversed(previous[1:]):
            tokens += unit.tokens
            if (
                not unit.sentence
                or tokens > self.overlap_tokens
                or tokens + incoming.tokens > self.max_tokens
            ):
                break
            tail.append(unit)
        return tail[::-1]
