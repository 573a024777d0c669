"""The embedder against the real packaged model (all-MiniLM-L6-v2), on the CPU."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from core.settings import EmbedderSettings
from streams.embedding.direct_path import DirectPath, _prefetch, plan_buckets
from streams.embedding.model import SentenceTransformerEmbedder

TEXTS = [
    "",
    "a",
    "Vitamin D deficiency and bone density.",
    "   leading and trailing spaces, UPPER case, ünïcödé and émojis 🙂   ",
    "Alterations of the architecture of cerebral white matter in the developing human brain "
    "can affect cortical development and result in functional disabilities. " * 3,
    # Far past the model's 256 tokens: truncated exactly like encode truncates.
    "Diffusion tensor imaging of newborn white matter, measured again and again. " * 40,
    "short one",
]


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(EmbedderSettings(device="cpu", backend="torch"), direct=True)


@pytest.fixture(scope="module")
def reference(embedder: SentenceTransformerEmbedder) -> np.ndarray:
    vectors = embedder._model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    return np.asarray(vectors, dtype=np.float32)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def test_loads_the_packaged_model_with_its_dimension(embedder: SentenceTransformerEmbedder) -> None:
    assert embedder.dimension == 384
    assert embedder.device == "cpu"
    assert embedder.model_name == "all-MiniLM-L6-v2"
    assert embedder.path == "direct"
    assert embedder._direct is not None
    assert embedder._direct.max_len == 256


def test_matches_encode(embedder: SentenceTransformerEmbedder, reference: np.ndarray) -> None:
    vectors = embedder.embed(TEXTS)
    assert isinstance(vectors, list)
    assert all(isinstance(v, list) and len(v) == 384 for v in vectors)
    assert all(isinstance(x, float) for x in vectors[0])
    got = np.asarray(vectors, dtype=np.float32)
    assert cosines(got, reference).min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_long_texts_are_truncated_like_encode(embedder: SentenceTransformerEmbedder) -> None:
    assert embedder._direct is not None
    [encoding] = embedder._direct._tokenize([TEXTS[5]])
    assert len(encoding) == 256
    longer = TEXTS[5] + " A different ending that falls past the 256th token."
    same = np.asarray(embedder.embed([TEXTS[5], longer]), dtype=np.float32)
    assert cosines(same[:1], same[1:]).min() >= 0.99999


def test_keeps_the_order_of_the_texts(
    embedder: SentenceTransformerEmbedder, reference: np.ndarray
) -> None:
    order = [6, 2, 5, 0, 4, 1, 3]
    got = np.asarray(embedder.embed([TEXTS[i] for i in order]), dtype=np.float32)
    assert cosines(got, reference[order]).min() >= 0.9999
    # One text alone gives the vector it gets in a batch of others.
    alone = np.asarray(embedder.embed([TEXTS[2]]), dtype=np.float32)
    assert cosines(alone, reference[2:3]).min() >= 0.9999


def test_embed_array_and_nothing(embedder: SentenceTransformerEmbedder) -> None:
    assert embedder.embed([]) == []
    assert embedder.embed_array([]).shape == (0, 384)
    array = embedder.embed_array(TEXTS[:3])
    assert array.dtype == np.float32
    np.testing.assert_allclose(array, np.asarray(embedder.embed(TEXTS[:3])), atol=1e-6)


def test_pipelined_small_buckets_match_encode(
    embedder: SentenceTransformerEmbedder, reference: np.ndarray
) -> None:
    """The producer thread (CUDA's path) with tiny buckets and chunks, on the CPU."""
    direct = DirectPath(embedder._model[0], "cpu", max_batch=2)
    direct.pipelined, direct.chunk_texts = True, 3
    got = np.full((len(TEXTS), 384), np.nan, dtype=np.float32)
    seen: list[int] = []

    def sink(index: np.ndarray, vectors: np.ndarray) -> None:
        seen.extend(index.tolist())
        got[index] = vectors

    direct.run(TEXTS, sink)
    assert sorted(seen) == list(range(len(TEXTS)))
    assert cosines(got, reference).min() >= 0.9999
    assert not [t for t in threading.enumerate() if t.name == "embedder-tokenize"]


def test_encode_fallback_gives_the_same_vectors(reference: np.ndarray) -> None:
    plain = SentenceTransformerEmbedder(
        EmbedderSettings(device="cpu", backend="torch"), direct=False
    )
    assert plain.path == "encode"
    got = np.asarray(plain.embed(TEXTS), dtype=np.float32)
    assert cosines(got, reference).min() >= 0.9999


def test_plan_buckets_sorts_by_length_within_a_token_budget() -> None:
    lengths = np.array([5, 1, 3, 3, 8, 2, 256, 7])
    groups = plan_buckets(lengths, max_batch=2, max_tokens=16)
    flat = np.concatenate(groups)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    # Longest first, and never a longer text after a shorter one.
    assert list(lengths[flat]) == sorted(lengths.tolist(), reverse=True)
    for group in groups:
        width = int(lengths[group].max())
        assert len(group) == 1 or len(group) * width <= 16
        assert len(group) <= 8
    # A text over the budget still gets a bucket of its own.
    assert [len(g) for g in groups][:1] == [1]


def test_prefetch_raises_the_producers_error_and_stops_its_thread() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise RuntimeError("tokenizer broke")

    items = _prefetch(failing, depth=1)
    assert next(items) == 1
    with pytest.raises(RuntimeError, match="tokenizer broke"):
        next(items)

    endless = _prefetch(lambda: iter(range(10**9)), depth=2)
    assert next(endless) == 0
    endless.close()
    assert not [t for t in threading.enumerate() if t.name == "embedder-tokenize"]
