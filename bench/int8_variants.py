"""Ways to make the CPU model int8, side by side: speed and lowest cosine.

The shipped int8 backend (streams/embedding/onnx.py) keeps the six feed-forward
down-projections in float. This benchmark builds the alternatives from the same
cached fp32 export, runs each on the same SciFact abstracts (length-sorted
batches of 32, the same padding), interleaved over rounds in one process, and
prints texts/s, CPU ms per text, the ratio to ONNX fp32 and the lowest and mean
cosine to ONNX fp32 (which matches torch to 1e-6):

- shipped: dynamic int8, per-channel weights, MatMuls with a weight operand,
  the down-projections in float;
- all: the same with the down-projections quantized too;
- all-reduce-range: `all` with 7-bit weights (for CPUs without VNNI);
- static-qdq: calibrated activation scales (QDQ), down-projections in float;
- fused-all: ONNX Runtime's transformer optimizer (fused attention, skip
  layer norms, bias GELU), then `all`;
- openvino-fp32 and openvino-static-qdq: the same files run by OpenVINO's CPU
  plugin, when `openvino` is importable (it is not a project dependency).

Static calibration reads paragraphs of the project's own docs, not the
evaluation corpus. The quantized files go to a scratch folder.

    .venv/bin/python -m bench.int8_variants --limit 160 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench import scifact
from bench.embedder import load_texts
from bench.pipeline import REPO, write_record
from core.settings import Settings
from streams.embedding import onnx as onnx_files
from streams.embedding.model import resolve_model

Batch = tuple[list[int], np.ndarray, np.ndarray]


def batches(tokenizer: Any, texts: list[str], size: int = 32) -> list[Batch]:
    encoded = tokenizer.encode_batch(texts)
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i].ids))
    out = []
    for start in range(0, len(order), size):
        index = order[start : start + size]
        width = max(len(encoded[i].ids) for i in index)
        ids = np.zeros((len(index), width), np.int64)
        mask = np.zeros_like(ids)
        for row, i in enumerate(index):
            length = len(encoded[i].ids)
            ids[row, :length] = encoded[i].ids
            mask[row, :length] = 1
        out.append((index, ids, mask))
    return out


def calibration(tokenizer: Any) -> list[dict[str, np.ndarray]]:
    paragraphs: list[str] = []
    for path in [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]:
        paragraphs += [p.strip() for p in path.read_text().split("\n\n") if len(p.strip()) > 200]
    return [
        {"input_ids": ids, "attention_mask": mask}
        for _, ids, mask in batches(tokenizer, paragraphs[:128], 16)
    ]


def down_projections(path: Path) -> list[str]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [
        n.name
        for n in graph.node
        if n.op_type == "MatMul" and onnx_files.is_down_projection(n.name)
    ]


def dynamic(src: Path, dest: Path, exclude: list[str], reduce_range: bool = False) -> Path:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        src,
        dest,
        per_channel=True,
        reduce_range=reduce_range,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm", "Attention"],
        nodes_to_exclude=exclude,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    return dest


def static(src: Path, dest: Path, exclude: list[str], feeds: list[dict[str, np.ndarray]]) -> Path:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    quantize_static(
        src,
        dest,
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=exclude,
        calibrate_method=CalibrationMethod.MinMax,
    )
    return dest


def fused(src: Path, dest: Path) -> Path:
    from onnxruntime.transformers import optimizer

    model = optimizer.optimize_model(
        str(src), model_type="bert", num_heads=12, hidden_size=384, opt_level=1
    )
    model.save_model_to_file(str(dest))
    return dest


def ort_runner(path: Path, threads: int) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    session = onnx_files.session(path, threads)
    return lambda feed: session.run(None, feed)[0]


def openvino_runner(path: Path, threads: int) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    import openvino

    core = openvino.Core()
    compiled = core.compile_model(
        core.read_model(str(path)),
        "CPU",
        {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"},
    )
    request = compiled.create_infer_request()
    return lambda feed: request.infer(feed)[0]


def build(fp32: Path, scratch: Path, tokenizer: Any, threads: int) -> dict[str, Any]:
    down = down_projections(fp32)
    feeds = calibration(tokenizer)
    files = {
        "onnx-fp32": fp32,
        "shipped": dynamic(fp32, scratch / "shipped.onnx", down),
        "all": dynamic(fp32, scratch / "all.onnx", []),
        "all-reduce-range": dynamic(fp32, scratch / "all-rr.onnx", [], reduce_range=True),
        "static-qdq": static(fp32, scratch / "static.onnx", down, feeds),
        "fused-all": dynamic(fused(fp32, scratch / "fused.onnx"), scratch / "fused-all.onnx", []),
    }
    runners = {name: ort_runner(path, threads) for name, path in files.items()}
    try:
        runners["openvino-fp32"] = openvino_runner(fp32, threads)
        runners["openvino-static-qdq"] = openvino_runner(files["static-qdq"], threads)
    except ImportError:
        print("openvino is not installed: its rows are left out")
    return runners


def embed(run: Callable[[dict[str, np.ndarray]], np.ndarray], work: list[Batch], n: int) -> Any:
    out = np.zeros((n, 384), np.float32)
    for index, ids, mask in work:
        out[index] = run({"input_ids": ids, "attention_mask": mask})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=160)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from tokenizers import Tokenizer

    settings = Settings.from_env().embedder
    model_path = Path(resolve_model(settings.model))
    tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
    tokenizer.enable_truncation(256)
    texts = load_texts(scifact.path(scifact.DATASET, "corpus.jsonl"), args.limit)
    work = batches(tokenizer, texts)
    cache = onnx_files.cache_dir(settings.model_cache, Path(settings.model).name, model_path)
    if not (cache / onnx_files.FP32).is_file():  # the worker has not exported it yet
        onnx_files.export_fp32(model_path, cache / onnx_files.FP32)
    threads = settings.threads or len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as scratch:
        runners = build(cache / onnx_files.FP32, Path(scratch), tokenizer, threads)
        reference = embed(runners["onnx-fp32"], work, len(texts))
        walls: dict[str, list[float]] = {name: [] for name in runners}
        cpus: dict[str, list[float]] = {name: [] for name in runners}
        cosines: dict[str, Any] = {}
        for _ in range(args.rounds):
            for name, run in runners.items():
                wall, cpu = time.perf_counter(), time.process_time()
                vectors = embed(run, work, len(texts))
                walls[name].append(time.perf_counter() - wall)
                cpus[name].append(time.process_time() - cpu)
                cosines[name] = (vectors * reference).sum(1)
    base = statistics.median(walls["onnx-fp32"])
    rows = {}
    print(f"\n{len(texts)} SciFact abstracts, {threads} threads, {args.rounds} rounds\n")
    print("| variant | texts/s | CPU ms/text | vs ONNX fp32 | lowest cosine | mean cosine |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in runners:
        wall = statistics.median(walls[name])
        rows[name] = {
            "texts_per_s": len(texts) / wall,
            "cpu_ms_per_text": 1000 * statistics.median(cpus[name]) / len(texts),
            "vs_fp32": base / wall,
            "lowest_cosine": float(cosines[name].min()),
            "mean_cosine": float(cosines[name].mean()),
        }
        row = rows[name]
        print(
            f"| {name} | {row['texts_per_s']:.1f} | {row['cpu_ms_per_text']:.1f} | "
            f"{row['vs_fp32']:.2f}x | {row['lowest_cosine']:.4f} | {row['mean_cosine']:.5f} |"
        )
    write_record("int8-variants", {"texts": len(texts), "threads": threads, "rows": rows})


if __name__ == "__main__":
    main()
