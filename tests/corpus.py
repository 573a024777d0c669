"""A generated corpus of scientific-looking abstracts, with claims to search for.

The tests that need hundreds of real-looking documents (the lexical oracle)
make them here instead of reading a dataset from outside the checkout: a clone
on its own must pass `make test`. The words are made up, but their statistics
are those of real text, because they are what a lexical retriever's ranking
depends on:

- term frequencies follow Zipf's law (frequency ~ 1 / rank), so a few terms
  are in most documents (low IDF) and most terms are rare (high IDF);
- the vocabulary grows as Heaps' law says (sublinearly with the text);
- about a third of running words are English stop words, which the lexical
  tokenizer drops;
- each document is about one or two topics, whose words concentrate in it,
  and a word once used tends to be used again (burstiness), so term
  frequencies within a document vary as BM25's saturation expects;
- document lengths vary widely (log-normal, like abstracts), so length
  normalisation matters;
- frequent words are short and rare words long (Zipf's law of abbreviation),
  which also spreads the chunk count per document (one to several chunks).

Each claim is written from one document's own words (weighted by how often
the document uses them), a word of its topic and stop words: every claim has
a document to find, and other documents of the topic compete for it.

Everything comes from one seeded generator: the same arguments give the same
corpus on every machine and Python version (`random.Random` is stable)."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from itertools import accumulate

# Real stop words, most frequent first; their weights fall off as Zipf's law.
STOP_WORDS = [
    "the",
    "of",
    "and",
    "in",
    "to",
    "a",
    "with",
    "was",
    "were",
    "for",
    "that",
    "is",
    "by",
    "from",
    "as",
    "on",
    "be",
    "this",
    "at",
    "are",
    "or",
    "which",
    "these",
    "an",
    "we",
    "our",
    "not",
    "it",
    "between",
    "than",
    "has",
    "have",
    "been",
    "after",
    "both",
    "but",
    "into",
    "their",
    "its",
    "also",
    "may",
    "can",
    "more",
    "during",
    "all",
    "other",
    "only",
    "most",
    "such",
    "those",
    "however",
    "each",
]
STOP_SHARE = 0.36
TOPIC_SHARE = 0.34
# A content word already in the document is used again with this probability.
REPEAT_SHARE = 0.24
VOCABULARY = 12_000
TOPICS = 40
TOPIC_WORDS = 320
# Zipf exponents: the background vocabulary and a topic's own words.
ZIPF_S = 1.1
# Without stop words, the commonest content words are in about half of the
# documents, not in all: Mandelbrot's shift of the ranks.
ZIPF_SHIFT = 15.0
TOPIC_ZIPF_S = 0.9
# Abstract length in words (log-normal): a median near 190, most of them 80-450.
LENGTH_MEDIAN = 190
LENGTH_SIGMA = 0.45

_ONSETS = [
    "b",
    "c",
    "d",
    "f",
    "g",
    "h",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "z",
    "br",
    "cr",
    "dr",
    "gl",
    "pl",
    "pr",
    "st",
    "tr",
    "ch",
    "ph",
    "th",
    "sc",
]
_VOWELS = ["a", "e", "i", "o", "u", "ae", "io", "ou", "y", "ea"]
_CODAS = ["", "", "n", "r", "s", "l", "m", "x", "t", "c", "st", "nt"]
_SUFFIXES = ["", "", "", "ase", "osis", "itis", "ine", "ic", "al", "ide", "ogen", "ation"]


@dataclass(frozen=True)
class Corpus:
    documents: list[dict[str, str]]  # {"_id", "title", "text"}
    queries: list[tuple[str, str]]  # (query id, claim)
    judged: dict[str, list[str]] = field(default_factory=dict)  # query id -> its document ids


def _zipf(n: int, s: float, shift: float = 0.0) -> list[float]:
    """Cumulative Zipf(-Mandelbrot) weights over ranks 1..n (for
    `random.choices`); a shift flattens the head, as content words' is."""
    return list(accumulate(1.0 / ((rank + shift) ** s) for rank in range(1, n + 1)))


def _word(rng: random.Random, rank: int, taken: set[str]) -> str:
    """A new pronounceable word, longer the rarer its rank."""
    syllables = 1 + min(2, int(math.log10(rank + 1) * 0.7)) + rng.choice((0, 0, 1))
    while True:
        stem = "".join(
            rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables)
        )
        word = stem + (rng.choice(_SUFFIXES) if rank > 300 else "")
        if len(word) > 2 and word not in taken:
            taken.add(word)
            return word


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    taken: set[str] = set(STOP_WORDS)
    return [_word(rng, rank, taken) for rank in range(1, size + 1)]


@dataclass(frozen=True)
class _Topic:
    words: list[str]
    weights: list[float]


class _Writer:
    """Draws the words of one document, topic by topic, with repeats."""

    def __init__(self, rng: random.Random, vocabulary: list[str], topics: list[_Topic]) -> None:
        self.rng = rng
        self.vocabulary = vocabulary
        self.background = _zipf(len(vocabulary), ZIPF_S, ZIPF_SHIFT)
        self.stop = _zipf(len(STOP_WORDS), 1.0)
        self.topics = topics

    def words(self, count: int, topics: list[_Topic], used: list[str]) -> list[str]:
        out = []
        for _ in range(count):
            roll = self.rng.random()
            if roll < STOP_SHARE:
                out.append(self.rng.choices(STOP_WORDS, cum_weights=self.stop)[0])
                continue
            roll = self.rng.random()
            if used and roll < REPEAT_SHARE:
                word = self.rng.choice(used)
            elif roll < REPEAT_SHARE + TOPIC_SHARE:
                topic = self.rng.choice(topics)
                word = self.rng.choices(topic.words, cum_weights=topic.weights)[0]
            else:
                word = self.rng.choices(self.vocabulary, cum_weights=self.background)[0]
            used.append(word)
            out.append(word)
        return out

    def number(self) -> str:
        kind = self.rng.random()
        if kind < 0.5:
            return str(self.rng.randint(10, 2000))
        if kind < 0.8:
            return f"{self.rng.uniform(0.1, 99):.1f}%"
        return f"p<0.{self.rng.choice(('05', '01', '001'))}"


def _sentences(writer: _Writer, words: list[str]) -> str:
    """Words into sentences of 12-30 words, with an occasional figure."""
    rng = writer.rng
    out, start = [], 0
    while start < len(words):
        size = rng.randint(12, 30)
        sentence = words[start : start + size]
        if rng.random() < 0.3:
            sentence.insert(rng.randrange(len(sentence) + 1), writer.number())
        out.append(" ".join(sentence).capitalize() + ".")
        start += size
    return " ".join(out)


def abstracts(documents: int = 300, queries: int = 40, seed: int = 20261207) -> Corpus:
    """`documents` abstracts and `queries` claims, each claim written from one
    of the documents (its judged document)."""
    rng = random.Random(seed)
    vocabulary = _vocabulary(rng, VOCABULARY)
    topic_weights = _zipf(TOPIC_WORDS, TOPIC_ZIPF_S)
    # A topic's words: mid-frequency and rare words, as a field's jargon is.
    topics = [
        _Topic(rng.sample(vocabulary[150:], TOPIC_WORDS), topic_weights) for _ in range(TOPICS)
    ]
    writer = _Writer(rng, vocabulary, topics)
    docs: list[dict[str, str]] = []
    used_by_doc: list[list[str]] = []
    topics_by_doc: list[list[_Topic]] = []
    for n in range(documents):
        mine = rng.sample(topics, 2 if rng.random() < 0.3 else 1)
        used: list[str] = []
        title = writer.words(rng.randint(6, 14), mine, used)
        length = max(40, int(rng.lognormvariate(math.log(LENGTH_MEDIAN), LENGTH_SIGMA)))
        text = _sentences(writer, writer.words(length, mine, used))
        docs.append({"_id": f"g{n:05d}", "title": " ".join(title).capitalize(), "text": text})
        used_by_doc.append(used)
        topics_by_doc.append(mine)
    claims: list[tuple[str, str]] = []
    judged: dict[str, list[str]] = {}
    for q, n in enumerate(rng.sample(range(documents), queries)):
        claim = _claim(writer, used_by_doc[n], topics_by_doc[n])
        query_id = f"q{q:03d}"
        claims.append((query_id, claim))
        judged[query_id] = [docs[n]["_id"]]
    return Corpus(docs, claims, judged)


def _claim(writer: _Writer, used: list[str], topics: list[_Topic]) -> str:
    """A claim of 8-16 words: 3-6 of the document's own words (the ones it
    uses most are likelier), one of its topic's, and stop words between."""
    rng = writer.rng
    counts = Counter(used)
    own: list[str] = []
    for word in rng.choices(list(counts), weights=list(counts.values()), k=12):
        if word not in own:
            own.append(word)
    content = own[: rng.randint(3, 6)]
    topic = rng.choice(topics)
    content.append(rng.choices(topic.words, cum_weights=topic.weights)[0])
    stops = rng.sample(STOP_WORDS[:20], rng.randint(3, 6))
    words = content + stops
    rng.shuffle(words)
    return " ".join(words).capitalize()
