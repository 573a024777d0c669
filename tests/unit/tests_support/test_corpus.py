"""The generated abstracts have the term statistics the lexical oracle test
relies on (tests/corpus.py). The bounds bracket what 300 SciFact abstracts
measure through the same tokenizer (in brackets below), so a generator that
drifts into uniform or degenerate text fails here, not silently in the oracle."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from sinks.qdrant.lexical import terms
from tests.corpus import Corpus, abstracts


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return abstracts(300, 40)


@pytest.fixture(scope="module")
def tokens(corpus: Corpus) -> list[list[str]]:
    return [terms(f"{d['title']}\n{d['text']}") for d in corpus.documents]


def slope(points: list[tuple[float, float]]) -> float:
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)


def test_the_same_seed_gives_the_same_corpus_and_another_seed_another() -> None:
    assert abstracts(20, 5) == abstracts(20, 5)
    assert abstracts(20, 5, seed=1).documents != abstracts(20, 5).documents


def test_sizes_and_ids(corpus: Corpus) -> None:
    assert len(corpus.documents) == 300
    assert len({d["_id"] for d in corpus.documents}) == 300
    assert len(corpus.queries) == 40
    assert set(corpus.judged) == {query_id for query_id, _ in corpus.queries}


def test_term_frequencies_follow_zipf(tokens: list[list[str]]) -> None:
    counts = sorted(Counter(t for doc in tokens for t in doc).values(), reverse=True)
    points = [(math.log(r), math.log(counts[r - 1])) for r in range(10, 1000)]
    assert -1.0 <= slope(points) <= -0.6  # [-0.71]


def test_the_vocabulary_grows_as_heaps_law_says(tokens: list[list[str]]) -> None:
    stream = [t for doc in tokens for t in doc]
    seen: set[str] = set()
    growth = []
    for n, term in enumerate(stream, 1):
        seen.add(term)
        if n in (1_000, 10_000):
            growth.append((n, len(seen)))
    growth.append((len(stream), len(seen)))
    beta = math.log(growth[-1][1] / growth[0][1]) / math.log(growth[-1][0] / growth[0][0])
    assert 0.55 <= beta <= 0.85  # [0.68]
    hapax = sum(1 for c in Counter(stream).values() if c == 1) / len(seen)
    assert 0.25 <= hapax <= 0.55  # [0.36]


def test_no_content_term_is_everywhere_and_terms_repeat_within_a_document(
    tokens: list[list[str]],
) -> None:
    df = Counter(t for doc in tokens for t in set(doc))
    assert 0.3 <= max(df.values()) / len(tokens) <= 0.75  # [0.50]
    within = [c for doc in tokens for c in Counter(doc).values()]
    assert 1.3 <= sum(within) / len(within) <= 1.9  # [1.63]


def test_lengths_vary_as_abstracts_do(corpus: Corpus) -> None:
    lengths = sorted(len(f"{d['title']} {d['text']}".split()) for d in corpus.documents)
    p10, p50, p90 = (lengths[len(lengths) * q // 10] for q in (1, 5, 9))
    assert 90 <= p10 <= 160 and 160 <= p50 <= 250 and 260 <= p90 <= 420  # [126/207/317]


def test_stop_words_are_a_share_of_the_text_that_the_tokenizer_drops(corpus: Corpus) -> None:
    words = [w.strip(".").lower() for d in corpus.documents for w in d["text"].split()]
    kept = sum(len(terms(d["text"])) for d in corpus.documents)
    assert 0.25 <= 1 - kept / len(words) <= 0.5  # [0.33]


def test_every_claim_shares_terms_with_its_judged_document(
    corpus: Corpus, tokens: list[list[str]]
) -> None:
    by_id = {d["_id"]: set(t) for d, t in zip(corpus.documents, tokens, strict=True)}
    for query_id, claim in corpus.queries:
        (judged,) = corpus.judged[query_id]
        assert len(set(terms(claim)) & by_id[judged]) >= 3, claim
