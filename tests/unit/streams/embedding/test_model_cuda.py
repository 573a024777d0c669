"""The embedder on a CUDA GPU, against `encode` on the CPU: the optional
`cuda` input (tests/optional.py). On a machine where torch sees no GPU these
tests are skipped, and the run's summary says so."""

from __future__ import annotations

import numpy as np
import pytest

from core.settings import EmbedderSettings
from streams.embedding.model import SentenceTransformerEmbedder
from tests import optional
from tests.unit.streams.embedding.test_model import TEXTS, cosines

# fp16 on CUDA (streams/embedding/direct_path.py) against fp32 on the CPU.
FP16_COSINE = 0.999


@pytest.fixture(scope="module")
def cuda_embedder() -> SentenceTransformerEmbedder:
    optional.need(optional.CUDA, optional.cuda_available())
    return SentenceTransformerEmbedder(EmbedderSettings(device="cuda", backend="torch"))


@pytest.fixture(scope="module")
def cpu_reference() -> np.ndarray:
    cpu = SentenceTransformerEmbedder(EmbedderSettings(device="cpu", backend="torch"))
    vectors = cpu._model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    return np.asarray(vectors, dtype=np.float32)


def test_runs_on_the_gpu_and_matches_the_cpu(
    cuda_embedder: SentenceTransformerEmbedder, cpu_reference: np.ndarray
) -> None:
    assert cuda_embedder.device.startswith("cuda")
    got = np.asarray(cuda_embedder.embed(TEXTS), dtype=np.float32)
    assert got.shape == (len(TEXTS), 384)
    assert cosines(got, cpu_reference).min() >= FP16_COSINE
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-3)


def test_order_and_batch_mates_do_not_move_a_vector(
    cuda_embedder: SentenceTransformerEmbedder, cpu_reference: np.ndarray
) -> None:
    order = [6, 2, 5, 0, 4, 1, 3]
    got = np.asarray(cuda_embedder.embed([TEXTS[i] for i in order]), dtype=np.float32)
    assert cosines(got, cpu_reference[order]).min() >= FP16_COSINE
    alone = np.asarray(cuda_embedder.embed([TEXTS[2]]), dtype=np.float32)
    assert cosines(alone, cpu_reference[2:3]).min() >= FP16_COSINE
