"""Which inference backend the embedder runs on a CPU (DOCSTREAM_EMBED_BACKEND).

`torch` is sentence-transformers' model (the direct path); `onnx` is ONNX
Runtime fp32; `onnx-int8` ONNX Runtime with int8 weights (streams/embedding/onnx.py).
Every ONNX backend is checked at load against `encode` (torch fp32) on a fixed
probe set, with a bound per backend: a careless quantization fails it. `auto`
decides once per machine (streams/embedding/decision.py): it times the
backends that pass, several rounds interleaved, keeps the fastest and records
it beside the exported model; later starts on the same machine build only that
backend and check it. It considers int8 only while
`INT8_RETRIEVAL_WITHIN_BOUND` records that int8's nDCG@10 on SciFact dev was
within 0.005 of torch fp32 (bench/quality.py). A backend that fails to build,
load or pass is one warning and torch runs.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from core.logs import get_logger
from core.settings import EmbedderSettings
from streams.embedding import decision, onnx
from streams.embedding.direct_path import DirectPath

log = get_logger(__name__)

ONNX_BACKENDS = ("onnx", "onnx-int8")
# Lowest cosine to torch fp32 over PROBES that a backend must reach. fp32 ONNX
# differs by rounding only. int8, measured: 0.976 over PROBES (the lowest are
# the near-empty texts "" and "ok"; 0.992 or more on the others) and 0.992 over
# 256 SciFact texts; quantizing every op gives 0.861 over PROBES and 0.90 over
# SciFact, so 0.97 tells them apart (docs/PERFORMANCE.md).
MIN_COSINE = {"onnx": 0.99999, "onnx-int8": 0.97}
# The recorded outcome of `python -m bench.quality --backend torch,onnx-int8`:
# whether int8's dense nDCG@10 on SciFact dev was within 0.005 of torch fp32's.
# Recorded on 2026-12-03: int8 0.6733 against torch 0.6747 (-0.0014); an earlier
# int8 run gave 0.6704 (-0.0043). (Held back once when the fault suite timed out
# with it on: every restart built, checked and timed every backend. A start now
# builds only the backend decided before: docs/PERFORMANCE.md.)
INT8_RETRIEVAL_WITHIN_BOUND = True

# Texts of very different lengths and kinds: the quality check's probe set.
PROBES: tuple[str, ...] = (
    "",
    "a",
    "Short query about protein folding?",
    "word " * 400,
    "What is the effect of vitamin D supplementation on bone fracture risk in older adults?",
    "BRCA1 mutations increase the lifetime risk of breast and ovarian cancer.",
    "Microglia depletion reduces synaptic loss in a mouse model of Alzheimer's disease.",
    "The ribosome translates messenger RNA into a polypeptide chain; transfer RNAs bring "
    "amino acids that match each codon, and elongation factors use GTP to move the chain.",
    "Kafka partitions keep the order of events per key, and consumers commit offsets only "
    "after the sinks acknowledged each write, so that nothing is lost when a worker stops.",
    "Randomised controlled trial: 1,204 patients, 12 months follow-up, hazard ratio 0.82 "
    "(95% CI 0.71-0.95, p = 0.008); adverse events did not differ between the arms.",
    "Die Proteinfaltung wird durch Chaperone unterstützt. 蛋白质折叠 ταχύτητα",
    "CRISPR-Cas9 genome editing in human embryos raises ethical questions. " * 12,
    "T cells expressing PD-1 are exhausted in chronic infection; blocking the PD-1/PD-L1 "
    "axis restores their proliferation and cytokine production in vitro and in vivo. " * 4,
    "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
    "ok",
    "Insulin resistance precedes type 2 diabetes by years.",
)
# The fixed batch `auto` times each candidate on, and how many times, in turn:
# decided once per machine, so it may take its time (10-20 s on 2 cores).
_TIMING_BATCH = PROBES[4:] * 4
_TIMING_ROUNDS = 3


class Runner(Protocol):
    def run(self, texts: Sequence[str], sink: Callable[[np.ndarray, np.ndarray], None]) -> None: ...


def vectors(runner: Runner, texts: Sequence[str], dimension: int) -> np.ndarray:
    out = np.empty((len(texts), dimension), dtype=np.float32)

    def sink(index: np.ndarray, rows: np.ndarray) -> None:
        out[index] = rows

    runner.run(texts, sink)
    return out


def lowest_cosine(expected: np.ndarray, got: np.ndarray) -> float:
    return float((expected * got).sum(axis=1).min())


def threads(settings: EmbedderSettings) -> int:
    return settings.threads or os.cpu_count() or 1


def build(variant: str, settings: EmbedderSettings, model_path: Path, tokens: DirectPath) -> Any:
    """An OnnxPath for `variant`, exporting into the cache when needed."""
    cache = onnx.cache_dir(settings.model_cache, Path(settings.model).name, Path(model_path))
    return onnx.OnnxPath(onnx.load(Path(model_path), cache, variant, threads(settings)), tokens)


def checked(
    variant: str, runner: Runner, expected: np.ndarray, dimension: int
) -> tuple[bool, float]:
    """Whether `runner` agrees with torch fp32 on PROBES, and its lowest cosine."""
    cosine = lowest_cosine(expected, vectors(runner, PROBES, dimension))
    return cosine >= MIN_COSINE[variant], cosine


def candidates(requested: str) -> tuple[str, ...]:
    if requested == "auto":
        return ("onnx", "onnx-int8") if INT8_RETRIEVAL_WITHIN_BOUND else ("onnx",)
    if requested in ONNX_BACKENDS:
        return (requested,)
    return ()


def choose(
    settings: EmbedderSettings,
    model_path: Path,
    tokens: DirectPath,
    torch_runner: Runner,
    encode: Callable[[Sequence[str]], np.ndarray],
    dimension: int,
) -> tuple[str, Runner]:
    """The backend to run on this CPU, and its runner (torch's when none passes)."""
    names = candidates(settings.backend)
    if not names:
        return "torch", torch_runner

    def passing(candidates: Sequence[str]) -> dict[str, Runner]:
        return _passing(candidates, settings, model_path, tokens, encode(PROBES), dimension)

    if settings.backend != "auto":
        passed = passing(names)
        name = next(iter(passed), "torch")
        return name, passed.get(name, torch_runner)
    folder = onnx.cache_dir(settings.model_cache, Path(settings.model).name, Path(model_path))
    here = decision.machine(threads(settings), names)
    before = decision.recorded(folder, here)
    if before is not None:
        kept = _kept(before, torch_runner, passing)
        if kept is not None:
            return kept
    passed = passing(names)
    rates = _rates({"torch": torch_runner, **passed}, dimension)
    best = max(rates, key=lambda name: rates[name])
    figures = {k: round(v, 1) for k, v in rates.items()}
    decision.record(folder, decision.Decision(best, figures, here))
    log.info(
        "embedder backend chosen",
        extra={"backend": best, "texts_per_s": figures, "decided": "now", "file": str(folder)},
    )
    return best, passed.get(best, torch_runner)


def _kept(
    before: decision.Decision,
    torch_runner: Runner,
    passing: Callable[[Sequence[str]], dict[str, Runner]],
) -> tuple[str, Runner] | None:
    """The recorded backend, built and checked again (a file in the cache is
    no proof); None when it no longer passes, and `auto` decides again. A kept
    torch needs no check, so it costs no reference encode."""
    runner: Runner | None = torch_runner
    if before.backend != "torch":
        runner = passing((before.backend,)).get(before.backend)
    if runner is None:
        return None
    log.info(
        "embedder backend chosen",
        extra={"backend": before.backend, "texts_per_s": before.texts_per_s, "decided": "before"},
    )
    return before.backend, runner


def _passing(
    names: Sequence[str],
    settings: EmbedderSettings,
    model_path: Path,
    tokens: DirectPath,
    expected: np.ndarray,
    dimension: int,
) -> dict[str, Runner]:
    """The runners of `names` that build and agree with torch on PROBES."""
    passed: dict[str, Runner] = {}
    for name in names:
        try:
            runner = build(name, settings, model_path, tokens)
            ok, cosine = checked(name, runner, expected, dimension)
        except Exception as exc:
            log.warning(
                "embedder backend failed to load; torch runs",
                extra={"backend": name, "why": f"{type(exc).__name__}: {exc}"[:300]},
            )
            continue
        if not ok:
            log.warning(
                "embedder backend disagrees with torch on the probe set; torch runs",
                extra={"backend": name, "lowest_cosine": round(cosine, 5)},
            )
            continue
        passed[name] = runner
    return passed


def _rates(runners: dict[str, Runner], dimension: int) -> dict[str, float]:
    """Texts per second of each runner: the median of rounds taken in turn, so
    a burst of other work on the machine lands on all of them alike."""
    for runner in runners.values():
        vectors(runner, _TIMING_BATCH[:4], dimension)  # warm-up
    taken: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(_TIMING_ROUNDS):
        for name, runner in runners.items():
            start = time.perf_counter()
            vectors(runner, _TIMING_BATCH, dimension)
            taken[name].append(len(_TIMING_BATCH) / max(time.perf_counter() - start, 1e-9))
    return {name: statistics.median(rates) for name, rates in taken.items()}
