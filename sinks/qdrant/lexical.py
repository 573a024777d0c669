"""BM25 as Qdrant sparse vectors.

A chunk's sparse vector holds BM25's saturated, length-normalised term
frequency for each of its terms; Qdrant multiplies by each term's IDF at query
time (`Modifier.IDF`), from the collection's live statistics. So lexical scores
stay BM25 as documents stream in, with no index to rebuild: a chunk is findable
by its words the moment it is written.

Terms: lower-cased word tokens, English stop words dropped, Snowball-stemmed,
hashed to 31-bit ids (a collision merges two terms' counts; rare and harmless
at this size)."""

from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

_TOKEN = re.compile(r"\w+", re.UNICODE)
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its
    itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with you your yours yourself yourselves""".split()  # noqa: SIM905 (a word list reads better as text)
)
_STEMMER = snowballstemmer.stemmer("english")


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return str(_STEMMER.stemWord(word))


def terms(text: str) -> list[str]:
    words = (w for w in _TOKEN.findall(text.lower()) if w not in STOP_WORDS and len(w) > 1)
    return [_stem(w) for w in words]


def term_id(term: str) -> int:
    return zlib.crc32(term.encode("utf-8")) & 0x7FFFFFFF


@dataclass(frozen=True)
class SparseTerms:
    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class Bm25:
    k1: float = 1.2
    b: float = 0.75
    # Typical terms in a chunk after stop words; BM25's average document length.
    average_length: float = 110.0

    def document(self, text: str) -> SparseTerms:
        ids = [term_id(t) for t in terms(text)]
        counts = Counter(ids)
        norm = self.k1 * (1 - self.b + self.b * len(ids) / self.average_length)
        pairs = sorted((i, tf * (self.k1 + 1) / (tf + norm)) for i, tf in counts.items())
        return SparseTerms([i for i, _ in pairs], [v for _, v in pairs])

    def query(self, text: str) -> SparseTerms:
        ids = sorted({term_id(t) for t in terms(text)})
        return SparseTerms(ids, [1.0] * len(ids))
