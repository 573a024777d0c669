"""Embedding throughput: raw `SentenceTransformer.encode` next to docstream's
embedder (streams/embedding/model.py), in the same process, on SciFact abstracts.

Both run the same weights (fp16 on CUDA) on the same texts (title + " " +
abstract) and the same batch size. After a warm-up, each round times one full
pass of each, in alternating order; the table gives the median and best rate of
the rounds, the ratio of the medians, and the largest 1 - cosine between the
two outputs. On CUDA it adds the ceiling: the model's forward pass alone on
pre-tokenised 256-token batches already on the GPU.

    .venv/bin/python -m bench.embedder                      # cuda if there is one
    .venv/bin/python -m bench.embedder --device cpu --limit 300 --paired 50
    .venv/bin/python bench/embedder.py --device cuda --limit 5000 --rounds 5
    .venv/bin/python -m bench.embedder --device cpu --limit 300 --backend torch,onnx,onnx-int8

--backend lists the inference backends to time next to encode (default on a
CPU: torch, onnx and onnx-int8; on CUDA: torch); each ONNX backend is an
embedder of its own (streams/embedding/backend.py), its exported files cached
as the worker caches them, and its row gives the ratio to encode from the same
rounds and the target (1.8x on a CPU).

--paired N adds a steadier comparison for a shared machine: both on each slice
of N texts, back to back, and the median ratio of the pairs. A JSON record goes
to bench/results/embedder-<device>.json (or --json-out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

if str(REPO) not in sys.path:  # run as a script: bench/embedder.py
    sys.path.insert(0, str(REPO))

from bench import scifact  # noqa: E402 (after the path: runs as a script too)

BACKENDS = "torch,onnx,onnx-int8"


def model_cache() -> Path:
    """Where the worker caches exported models (DOCSTREAM_MODEL_CACHE)."""
    from core.settings import Settings

    return Settings.from_env().embedder.model_cache


def load_texts(path: Path, limit: int) -> list[str]:
    texts: list[str] = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            row = json.loads(line)
            texts.append(f"{row.get('title', '')} {row.get('text', '')}")
            if len(texts) >= limit:
                break
    return texts


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return str(torch.cuda.get_device_name(torch.device(device)))
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def timed(run: Callable[[], Any], sync: Callable[[], None]) -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds of this process (all threads), and the output."""
    sync()
    start, cpu = time.perf_counter(), time.process_time()
    out = run()
    sync()
    return time.perf_counter() - start, time.process_time() - cpu, out


def paired_speedups(
    texts: Sequence[str],
    size: int,
    encode: Callable[[Sequence[str]], Any],
    embed: Callable[[Sequence[str]], Any],
    sync: Callable[[], None],
) -> list[float]:
    """encode time / embedder time on each slice of `size` texts, the two run
    back to back (alternating which goes first), so both see the same load."""
    ratios: list[float] = []
    if size <= 0:
        return ratios
    for number, start in enumerate(range(0, len(texts), size)):
        part = texts[start : start + size]
        spent: dict[str, float] = {}
        order = ["encode", "embed"] if number % 2 == 0 else ["embed", "encode"]
        for key in order:
            run = encode if key == "encode" else embed
            spent[key], _, _ = timed(partial(run, part), sync)
        ratios.append(spent["encode"] / spent["embed"])
    return ratios


def forward_ceiling(model: Any, texts: Sequence[str], batch: int, rounds: int) -> float:
    """Sequences/s of the bare transformer forward pass: inputs pre-tokenised and
    padded to max_seq_length, already on the GPU, no attention mask, no pooling."""
    import torch

    transformer = model[0]
    width = int(transformer.max_seq_length)
    ids = transformer.tokenizer(
        list(texts),
        padding="max_length",
        truncation=True,
        max_length=width,
        return_tensors="pt",
    )["input_ids"].to(model.device)
    batches = [ids[i : i + batch] for i in range(0, len(ids), batch)]
    net = transformer.auto_model
    rates = []
    with torch.inference_mode():
        for b in batches[:2]:
            net(input_ids=b)
        for _ in range(rounds):
            torch.cuda.synchronize()
            start = time.perf_counter()
            for b in batches:
                net(input_ids=b)
            torch.cuda.synchronize()
            rates.append(len(ids) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--corpus", type=Path, default=None, help="BEIR corpus.jsonl (default: SciFact's)"
    )
    parser.add_argument(
        "--limit", type=int, default=0, help="texts to embed (default 2000 on cuda, 300 on cpu)"
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=0,
        help="sequences per forward pass, for both (default: the embedder's for the device)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="timed passes of each")
    parser.add_argument(
        "--paired",
        type=int,
        default=0,
        metavar="N",
        help="also time both on slices of N texts, back to back, and give the median "
        "ratio of the pairs (steadier than whole passes on a machine shared with other jobs)",
    )
    parser.add_argument(
        "--backend",
        default="",
        help="comma-separated backends to time (torch, onnx, onnx-int8); "
        "default torch,onnx,onnx-int8 on a CPU, torch on CUDA",
    )
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()

    import numpy as np
    import sentence_transformers
    import torch
    import transformers

    from core.settings import EmbedderSettings
    from streams.embedding.model import SentenceTransformerEmbedder, resolve_device

    device = resolve_device(args.device)
    cuda = device.startswith("cuda")
    limit = args.limit or (2000 if cuda else 300)
    corpus = args.corpus or scifact.path(scifact.DATASET, "corpus.jsonl")
    texts = load_texts(corpus, limit)
    if not texts:
        print(f"no texts in {corpus}", file=sys.stderr)
        return 1

    settings = EmbedderSettings(device=device, backend="torch")
    embedder = SentenceTransformerEmbedder(
        settings, forward_batch=args.batch_size or None, direct=True
    )
    wanted = [b for b in (args.backend or ("torch" if cuda else BACKENDS)).split(",") if b]
    others: dict[str, Any] = {}
    for name in (b for b in wanted if b != "torch"):
        other = SentenceTransformerEmbedder(
            replace(settings, backend=name, model_cache=model_cache()),
            forward_batch=args.batch_size or None,
            direct=True,
        )
        if other.backend != name:
            print(f"{name}: not available here (the embedder fell back to {other.backend})")
            continue
        others[name] = other
    batch = embedder.forward_batch
    model = embedder._model  # the same weights, fp16 on CUDA
    max_len = int(model.max_seq_length)
    tokens = [len(ids) for ids in model[0].tokenizer(texts, verbose=False)["input_ids"]]
    kept = [min(n, max_len) for n in tokens]
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def encode() -> Any:
        return model.encode(
            texts,
            batch_size=batch,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def embed() -> Any:
        return embedder.embed(texts)

    def encode_slice(part: Sequence[str]) -> Any:
        return model.encode(
            list(part), batch_size=batch, normalize_embeddings=True, show_progress_bar=False
        )

    name = device_name(device)
    print(
        f"{len(texts)} SciFact texts, {statistics.mean(kept):.0f} tokens on average after "
        f"truncation to {max_len} ({sum(n > max_len for n in tokens) / len(tokens):.0%} "
        f"truncated); device {device} ({name}); torch {torch.__version__}, "
        f"sentence-transformers {sentence_transformers.__version__}; batch {batch}, "
        f"{args.rounds} rounds",
        flush=True,
    )

    warm = texts[: min(len(texts), 2 * batch)]
    model.encode(warm, batch_size=batch, show_progress_bar=False)
    embedder.embed(warm)
    for other in others.values():
        other.embed(warm)

    runs = {"encode": encode, "embedder": embed}
    runs.update({name: partial(other.embed, texts) for name, other in others.items()})
    seconds: dict[str, list[float]] = {k: [] for k in runs}
    cpu_seconds: dict[str, list[float]] = {k: [] for k in runs}
    outputs: dict[str, Any] = {}
    for round_no in range(args.rounds):
        keys = list(runs)  # interleaved: each round starts one later
        order = keys[round_no % len(keys) :] + keys[: round_no % len(keys)]
        for key in order:
            elapsed, cpu, outputs[key] = timed(runs[key], sync)
            seconds[key].append(elapsed)
            cpu_seconds[key].append(cpu)
            print(
                f"  round {round_no + 1}: {key:8} {len(texts) / elapsed:10.1f} chunks/s, "
                f"{1000 * cpu / len(texts):7.2f} CPU ms/chunk",
                flush=True,
            )

    reference = np.asarray(outputs["encode"], dtype=np.float32)
    ours = np.asarray(outputs["embedder"], dtype=np.float32)
    worst = float(np.max(1.0 - np.sum(reference * ours, axis=1)))
    lowest = {
        k: float(np.min(np.sum(reference * np.asarray(outputs[k], dtype=np.float32), axis=1)))
        for k in others
    }

    rates = {k: [len(texts) / s for s in v] for k, v in seconds.items()}
    median = {k: statistics.median(v) for k, v in rates.items()}
    best = {k: max(v) for k, v in rates.items()}
    # CPU time per chunk moves less than wall time when other jobs share the machine.
    cpu_ms = {k: 1000 * statistics.median(v) / len(texts) for k, v in cpu_seconds.items()}
    ceiling = forward_ceiling(model, texts, batch, args.rounds) if cuda else None
    paired = paired_speedups(texts, args.paired, encode_slice, embedder.embed, sync)

    rows = [
        ("SentenceTransformer.encode", median["encode"], best["encode"]),
        ("docstream embedder (torch)", median["embedder"], best["embedder"]),
        *((f"docstream embedder ({k})", median[k], best[k]) for k in others),
    ]
    print()
    print(f"| {'chunks/s':34} | {'median':>10} | {'best':>10} | {'vs encode':>9} |")
    print(f"|{'-' * 36}|{'-' * 12}|{'-' * 12}|{'-' * 11}|")
    for label, med, top in rows:
        ratio = med / median["encode"]
        print(f"| {label:34} | {med:10.1f} | {top:10.1f} | {ratio:8.2f}x |")
    if ceiling is not None:
        label = f"forward only, pre-tokenised ({max_len} tok)"
        ratio = ceiling / median["encode"]
        print(f"| {label:34} | {ceiling:10.1f} | {'':10} | {ratio:8.2f}x |")
    print(
        f"\nCPU ms per chunk (median, all threads): encode {cpu_ms['encode']:.2f}, "
        f"embedder {cpu_ms['embedder']:.2f}"
    )
    if paired:
        print(
            f"paired slices of {args.paired}: encode time / embedder time, median "
            f"{statistics.median(paired):.3f} over {len(paired)} pairs "
            f"(embedder faster in {sum(r > 1 for r in paired)})"
        )
    print(f"max 1 - cosine(encode, embedder) = {worst:.2e} over {len(texts)} texts")
    for k, cosine in lowest.items():
        print(f"lowest cosine(encode, {k}) = {cosine:.4f} over {len(texts)} texts")
    if not cuda:
        fastest = max(median, key=lambda k: median[k])
        print(
            f"target on a CPU: >= 1.80x encode; fastest here {fastest} "
            f"{median[fastest] / median['encode']:.2f}x"
        )

    record = {
        "bench": "embedder",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": device,
        "device_name": name,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "torch_threads": torch.get_num_threads(),
        "model": embedder.model_name,
        "dtype": "float16" if cuda else "float32",
        "texts": len(texts),
        "mean_tokens": statistics.mean(kept),
        "truncated_share": sum(n > max_len for n in tokens) / len(tokens),
        "batch_size": batch,
        "rounds": args.rounds,
        "encode_chunks_per_s": {"median": median["encode"], "best": best["encode"]},
        "embedder_chunks_per_s": {"median": median["embedder"], "best": best["embedder"]},
        "embedder_vs_encode": median["embedder"] / median["encode"],
        "cpu_ms_per_chunk": cpu_ms,
        "rounds_chunks_per_s": rates,
        "forward_only_sequences_per_s": ceiling,
        "paired_slice": args.paired or None,
        "paired_encode_over_embedder": paired or None,
        "max_one_minus_cosine": worst,
        "backends": {
            k: {
                "chunks_per_s": {"median": median[k], "best": best[k]},
                "vs_encode": median[k] / median["encode"],
                "lowest_cosine": lowest[k],
            }
            for k in others
        },
        "argv": sys.argv[1:],
    }
    from bench.pipeline import write_record  # the stack's modules load only here

    write_record(f"embedder-{device.split(':')[0]}", record, args.json_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
