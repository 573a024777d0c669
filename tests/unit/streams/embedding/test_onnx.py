"""The ONNX Runtime backends against torch fp32, on the real packaged model.

The model is exported and quantized once per session into a temporary cache
(a few seconds each); every test reuses those files.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.settings import EmbedderSettings
from streams.embedding import backend, decision, onnx
from streams.embedding.model import SentenceTransformerEmbedder, resolve_model

MODEL_PATH = Path(resolve_model("all-MiniLM-L6-v2"))


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def settings(cache_root: Path) -> EmbedderSettings:
    return EmbedderSettings(device="cpu", backend="torch", model_cache=cache_root, threads=2)


@pytest.fixture(scope="session")
def torch_embedder(settings: EmbedderSettings) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(settings)


@pytest.fixture(scope="session")
def cache(cache_root: Path) -> Path:
    """The exported fp32 and int8 files, built once."""
    folder = onnx.cache_dir(cache_root, "all-MiniLM-L6-v2", MODEL_PATH)
    onnx.export_fp32(MODEL_PATH, folder / onnx.FP32)
    onnx.quantize_int8(folder / onnx.FP32, folder / onnx.INT8)
    return folder


@pytest.fixture(scope="session")
def expected(torch_embedder: SentenceTransformerEmbedder) -> np.ndarray:
    return torch_embedder._encode(backend.PROBES)


def runner(path: Path, embedder: SentenceTransformerEmbedder) -> onnx.OnnxPath:
    assert embedder._direct is not None
    return onnx.OnnxPath(onnx.session(path, 2), embedder._direct)


def probe_cosine(path: Path, embedder: SentenceTransformerEmbedder, expected: np.ndarray) -> float:
    got = backend.vectors(runner(path, embedder), backend.PROBES, embedder.dimension)
    return backend.lowest_cosine(expected, got)


def test_fp32_onnx_matches_torch(
    cache: Path, torch_embedder: SentenceTransformerEmbedder, expected: np.ndarray
) -> None:
    assert probe_cosine(cache / onnx.FP32, torch_embedder, expected) >= 0.99999


def test_int8_stays_within_its_bound(
    cache: Path, torch_embedder: SentenceTransformerEmbedder, expected: np.ndarray
) -> None:
    cosine = probe_cosine(cache / onnx.INT8, torch_embedder, expected)
    assert backend.MIN_COSINE["onnx-int8"] <= cosine < 0.99999  # quantized, yet close


def test_a_careless_quantization_fails_the_same_bound(
    cache: Path,
    tmp_path: Path,
    torch_embedder: SentenceTransformerEmbedder,
    expected: np.ndarray,
) -> None:
    careless = tmp_path / "careless.onnx"
    onnx.quantize_int8(cache / onnx.FP32, careless, careless=True)
    ok, cosine = backend.checked(
        "onnx-int8", runner(careless, torch_embedder), expected, torch_embedder.dimension
    )
    assert not ok, cosine


def test_the_cache_key_names_model_weights_and_versions(cache_root: Path) -> None:
    folder = onnx.cache_dir(cache_root, "all-MiniLM-L6-v2", MODEL_PATH)
    assert folder == onnx.cache_dir(cache_root, "all-MiniLM-L6-v2", MODEL_PATH)
    assert folder.name.startswith("all-MiniLM-L6-v2-")


def test_a_second_load_reuses_the_cache(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_export(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx, "export_fp32", no_export)
    monkeypatch.setattr(onnx, "quantize_int8", no_export)
    assert onnx.load(MODEL_PATH, cache, "onnx-int8", 2) is not None
    assert onnx.load(MODEL_PATH, cache, "onnx", 2) is not None
    assert not list(cache.glob("*.tmp"))  # atomic writes leave nothing behind


def test_a_corrupt_cache_file_is_exported_again(
    cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "cache"
    shutil.copytree(cache, broken)
    (broken / onnx.FP32).write_bytes(b"not a model")
    with caplog.at_level(logging.WARNING, logger="streams.embedding.onnx"):
        assert onnx.load(MODEL_PATH, broken, "onnx", 2) is not None
    assert any("exporting it again" in r.getMessage() for r in caplog.records)
    assert (broken / onnx.FP32).stat().st_size > 1_000_000


def test_an_explicit_backend_runs_and_says_so(
    cache: Path, settings: EmbedderSettings, torch_embedder: SentenceTransformerEmbedder
) -> None:
    embedder = SentenceTransformerEmbedder(replace(settings, backend="onnx-int8"))
    assert embedder.backend == "onnx-int8"
    texts = ["Vitamin D and bone density.", "word " * 300, ""]
    got = embedder.embed_array(texts)
    assert got.shape == (3, 384)
    cosines = (got * torch_embedder._encode(texts)).sum(axis=1)
    assert cosines.min() >= backend.MIN_COSINE["onnx-int8"]
    # Dynamic int8 scales activations per batch: alone, a text moves a little.
    alone = np.asarray(embedder.embed(texts[:1])[0], dtype=np.float32)
    assert float(alone @ got[0]) >= 0.99


def test_auto_picks_a_backend_that_passed_and_reports_it(
    cache: Path, settings: EmbedderSettings, caplog: pytest.LogCaptureFixture
) -> None:
    from prometheus_client import REGISTRY

    with caplog.at_level(logging.INFO):
        embedder = SentenceTransformerEmbedder(replace(settings, backend="auto"))
    allowed = {"torch", "onnx"} | ({"onnx-int8"} if backend.INT8_RETRIEVAL_WITHIN_BOUND else set())
    assert embedder.backend in allowed
    loaded = [r for r in caplog.records if r.getMessage() == "embedder loaded"]
    assert loaded and getattr(loaded[-1], "backend", None) == embedder.backend
    metric = REGISTRY.get_sample_value("docstream_embedder_backend", {"backend": embedder.backend})
    assert metric == 1


def test_auto_leaves_int8_out_until_retrieval_quality_was_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(backend, "INT8_RETRIEVAL_WITHIN_BOUND", False)
    assert backend.candidates("auto") == ("onnx",)
    monkeypatch.setattr(backend, "INT8_RETRIEVAL_WITHIN_BOUND", True)
    assert backend.candidates("auto") == ("onnx", "onnx-int8")
    assert backend.candidates("torch") == ()


def test_a_backend_that_fails_to_load_falls_back_to_torch(
    settings: EmbedderSettings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("no runtime here")

    monkeypatch.setattr(onnx, "load", broken)
    with caplog.at_level(logging.WARNING, logger="streams.embedding.backend"):
        embedder = SentenceTransformerEmbedder(replace(settings, backend="onnx"))
    assert embedder.backend == "torch"
    assert embedder.path == "direct"
    warnings = [r for r in caplog.records if "failed to load" in r.getMessage()]
    assert len(warnings) == 1 and "no runtime here" in getattr(warnings[0], "why", "")
    assert embedder.embed(["still embeds"])[0]


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="DOCSTREAM_EMBED_BACKEND"):
        EmbedderSettings(backend="tensorrt")


def test_auto_decides_once_and_a_later_start_keeps_it_without_timing(
    cache: Path,
    settings: EmbedderSettings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (cache / decision.FILE).unlink(missing_ok=True)
    auto = replace(settings, backend="auto")
    with caplog.at_level(logging.INFO, logger="streams.embedding.backend"):
        first = SentenceTransformerEmbedder(auto)
    chosen = [r for r in caplog.records if r.getMessage() == "embedder backend chosen"]
    assert getattr(chosen[-1], "decided", None) == "now"
    figures = getattr(chosen[-1], "texts_per_s", {})
    assert set(figures) == {"torch", *backend.candidates("auto")}
    assert (cache / decision.FILE).is_file()

    built: list[str] = []
    real_build = backend.build
    monkeypatch.setattr(
        backend, "build", lambda name, *a: built.append(name) or real_build(name, *a)
    )
    monkeypatch.setattr(backend, "_rates", lambda *a: pytest.fail("a kept decision is not timed"))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="streams.embedding.backend"):
        again = SentenceTransformerEmbedder(auto)
    assert again.backend == first.backend
    assert built == ([] if first.backend == "torch" else [first.backend]), "only the chosen one"
    kept = [r for r in caplog.records if r.getMessage() == "embedder backend chosen"]
    assert getattr(kept[-1], "decided", None) == "before"
    assert getattr(kept[-1], "texts_per_s", None) == figures, "the same figures, every start"


def test_another_machine_or_a_backend_that_no_longer_passes_decides_again(
    cache: Path, settings: EmbedderSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    auto = replace(settings, backend="auto")
    here = decision.machine(backend.threads(auto), backend.candidates("auto"))
    decision.record(cache, decision.Decision("onnx", {"torch": 1.0, "onnx": 2.0}, here))
    timed: list[int] = []
    real_rates = backend._rates
    monkeypatch.setattr(backend, "_rates", lambda *a: timed.append(1) or real_rates(*a))
    bounds = backend.MIN_COSINE
    monkeypatch.setattr(backend, "MIN_COSINE", {**bounds, "onnx": 1.1})
    SentenceTransformerEmbedder(auto)  # the recorded onnx fails its check now
    assert timed == [1]
    moved = {**here, "cpu": "another CPU"}
    decision.record(cache, decision.Decision("torch", {"torch": 1.0}, moved))
    monkeypatch.setattr(backend, "MIN_COSINE", bounds)
    SentenceTransformerEmbedder(auto)
    assert timed == [1, 1], "a decision made on another CPU is not this one's"
