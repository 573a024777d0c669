"""ONNX Runtime inference for the embedding model on CPUs: export, int8
quantization, the on-disk cache and the session that runs length buckets.

The model is exported once, offline, from the local weights: the transformer
with mean pooling and L2 normalisation inside the graph (input_ids,
attention_mask -> unit vectors), dynamic batch and sequence axes. The files are
cached under `DOCSTREAM_MODEL_CACHE`, keyed by the model's name, a digest of
its weight files and the exporter's versions, and written atomically (a temp
file renamed into place), so two processes starting at once never read half a
file.

int8 is `quantize_dynamic` done carefully: per-channel int8 weights, only the
MatMuls with a weight operand (embeddings, LayerNorm, Softmax, the attention
products and the pooling stay in float), and the feed-forward down-projections
kept in float: their input (after GELU) has outliers that a per-tensor uint8
activation scale flattens. Measured on 256 SciFact texts: lowest cosine to torch
fp32 0.992 (quantizing every op: 0.90). See docs/PERFORMANCE.md.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.logs import get_logger
from streams.embedding.direct_path import DirectPath

log = get_logger(__name__)

FP32 = "model.onnx"
INT8 = "model-int8.onnx"
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


def versions() -> str:
    """The exporter's versions: a new torch/onnx/onnxruntime exports again."""
    import onnx
    import onnxruntime
    import torch

    return f"torch{torch.__version__}-onnx{onnx.__version__}-ort{onnxruntime.__version__}"


@functools.cache
def weights_digest(model_path: Path) -> str:
    """sha256 over the names and bytes of the model's weight files (about 90 MB
    read: once per process, however many backends a start-up builds)."""
    digest = hashlib.sha256()
    for path in sorted(model_path.rglob("*")):
        if path.is_file() and path.suffix in _WEIGHT_SUFFIXES:
            digest.update(path.relative_to(model_path).as_posix().encode())
            with path.open("rb") as data:
                for block in iter(lambda: data.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def cache_dir(root: Path, model_name: str, model_path: Path) -> Path:
    """Where this model's exported files live (one folder per weights + versions)."""
    key = hashlib.sha256(f"{weights_digest(model_path)}|{versions()}".encode()).hexdigest()
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_name)
    return root / f"{safe}-{key[:16]}"


def _atomic(dest: Path, write: Callable[[Path], None]) -> None:
    """`write` into a temp file next to `dest`, then rename it into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def export_fp32(model_path: Path, dest: Path) -> None:
    """Transformer -> mean pooling -> normalise, as one ONNX graph."""
    import torch
    from transformers import AutoModel

    # Eager attention: the exporter traces it into plain ONNX operators.
    model = AutoModel.from_pretrained(str(model_path), attn_implementation="eager").eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask)[0]
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    sample = torch.ones((2, 8), dtype=torch.int64)
    axes = {"batch": 0, "seq": 1}

    def write(tmp: Path) -> None:
        # The tracer warns about every Python branch of the model's code it
        # freezes (harmless here: the checks against `encode` at load are the
        # proof); a newcomer's first start should say what happens, once.
        log.info(
            "exporting the model to ONNX once (a minute at most; cached)",
            extra={"model": str(model_path), "file": str(dest)},
        )
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Pooled(),
                (sample, sample),
                str(tmp),
                input_names=["input_ids", "attention_mask"],
                output_names=["embedding"],
                dynamic_axes={
                    "input_ids": {v: k for k, v in axes.items()},
                    "attention_mask": {v: k for k, v in axes.items()},
                    "embedding": {0: "batch"},
                },
                opset_version=17,
                dynamo=False,
            )

    _atomic(dest, write)


def quantize_int8(src: Path, dest: Path, *, careless: bool = False) -> None:
    """int8 weights for the MatMuls (see the module's docstring). `careless`
    quantizes every op with the defaults: only for the test that shows the
    quality check catches it."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def write(tmp: Path) -> None:
        if careless:
            quantize_dynamic(src, tmp)
            return
        graph = onnx.load(str(src), load_external_data=False).graph
        down = [n.name for n in graph.node if n.op_type == "MatMul" and is_down_projection(n.name)]
        quantize_dynamic(
            src,
            tmp,
            per_channel=True,
            # VNNI multiplies int8 without the saturation reduce_range avoids;
            # on AVX2 without VNNI 8-bit weights measured the same (lowest
            # cosine 0.994 over 300 SciFact abstracts, bench.embedder).
            reduce_range=False,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gemm"],
            nodes_to_exclude=down,
        )

    _atomic(dest, write)


def is_down_projection(name: str) -> bool:
    """The feed-forward down-projection (BERT's `layer.N/output/dense`)."""
    return "/output/dense/" in name and "/attention/" not in name


def session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def load(model_path: Path, cache: Path, variant: str, threads: int) -> Any:
    """A session for `variant` ("onnx" or "onnx-int8"), exporting into `cache`
    when the file is missing; a file that does not load is built again once."""
    fp32, int8 = cache / FP32, cache / INT8
    target = int8 if variant == "onnx-int8" else fp32
    for attempt in (1, 2):
        if attempt == 2 or not fp32.is_file():
            export_fp32(model_path, fp32)
        if target is int8 and (attempt == 2 or not int8.is_file()):
            quantize_int8(fp32, int8)
        try:
            return session(target, threads)
        except Exception as exc:
            if attempt == 2:
                raise
            log.warning(
                "cached ONNX model does not load; exporting it again",
                extra={"file": str(target), "why": f"{type(exc).__name__}: {exc}"[:300]},
            )
    raise AssertionError("unreachable")


class OnnxPath:
    """Runs an ONNX session over the direct path's length buckets (same
    tokenisation, same padding per bucket): `run` as DirectPath.run."""

    def __init__(self, runtime: Any, tokens: DirectPath) -> None:
        self.session = runtime
        self.tokens = tokens

    def run(self, texts: Sequence[str], sink: Callable[[np.ndarray, np.ndarray], None]) -> None:
        for bucket in self.tokens.buckets(list(texts)):
            ids = bucket.ids.numpy().astype(np.int64)
            width = ids.shape[1]
            mask = (np.arange(width)[None, :] < bucket.lengths.numpy()[:, None]).astype(np.int64)
            (vectors,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
            sink(bucket.index, np.asarray(vectors, dtype=np.float32))
