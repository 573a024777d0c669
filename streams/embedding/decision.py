"""`auto`'s choice of inference backend, made once per machine and kept.

Timing the backends at every start made the choice a coin toss: on a busy
2-core machine the same deployment ran torch after one restart and ONNX after
the next (docs/PERFORMANCE.md). So `auto` decides once, with a longer and
repeated measurement, and records the decision in the model's export folder
(`streams/embedding/onnx.py` names it after the weights and the exporter's
versions) together with what it was decided for: the CPU (model and the
instruction sets that change ONNX Runtime's kernels), its cores and the
threads the embedder uses, the library versions, and the candidates. A start
whose machine matches reuses the decision and logs the same figures; a
changed CPU, model, library or candidate list decides again."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.logs import get_logger

log = get_logger(__name__)
FILE = "backend-decision.json"
# Bumped when the way `auto` decides changes: every machine decides again.
RULE = "2"
# CPU features that change which kernels ONNX Runtime and torch run.
_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "avx_vnni", "fma")


@dataclass(frozen=True)
class Decision:
    backend: str
    texts_per_s: dict[str, float]  # what it was chosen on
    machine: dict[str, str]  # what it holds for


def machine(threads: int, candidates: tuple[str, ...]) -> dict[str, str]:
    """What a decision holds for."""
    import onnxruntime
    import torch

    cpuinfo = _cpuinfo()
    flags = set(_field(cpuinfo, "flags").split())
    return {
        "cpu": _field(cpuinfo, "model name") or platform.processor() or platform.machine(),
        "cpu_flags": ",".join(f for f in _FLAGS if f in flags),
        "cores": str(os.cpu_count() or 1),
        "threads": str(threads),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "candidates": ",".join(("torch", *candidates)),
        "rule": RULE,
    }


def recorded(folder: Path, wanted: Mapping[str, str]) -> Decision | None:
    """The decision recorded in `folder` for this machine, or None (none yet,
    another machine's, or a file that does not read: decide again)."""
    try:
        raw: Any = json.loads((folder / FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or not JSON (a file cut short)
        return None
    if not isinstance(raw, dict):
        return None
    backend, figures, made_for = raw.get("backend"), raw.get("texts_per_s"), raw.get("machine")
    if not (isinstance(backend, str) and isinstance(figures, dict) and made_for == dict(wanted)):
        return None
    return Decision(backend, figures, made_for)


def record(folder: Path, decision: Decision) -> None:
    """Written whole or not at all (two processes deciding at once both write
    a full file; the last one stays)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(asdict(decision), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder / FILE)


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _field(cpuinfo: str, name: str) -> str:
    """The first value of `name` in /proc/cpuinfo's text ("" where it has none)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return ""
