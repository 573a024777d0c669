"""Fusing ranked lists from several retrievers into one. Pure functions.

- `rrf`: reciprocal rank fusion, score = Σ weight_r / (k + rank_r), k = 60 by
  default. Robust to retrievers whose scores live on different scales.
- `weighted`: Σ weight_r · score_r after min-max scaling each list to [0, 1].

Each fused hit keeps the rank it had in every retriever that found it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from core.types import Hit

RRF_K = 60


@dataclass
class FusedHit:
    hit: Hit
    score: float = 0.0
    ranks: dict[str, int] = field(default_factory=dict)


def _scaled(hits: Sequence[Hit]) -> list[float]:
    if not hits:
        return []
    high, low = max(h.score for h in hits), min(h.score for h in hits)
    if high == low:
        return [1.0] * len(hits)
    return [(h.score - low) / (high - low) for h in hits]


def fuse(
    ranked: Mapping[str, Sequence[Hit]],
    method: str = "rrf",
    weights: Mapping[str, float] | None = None,
    rrf_k: int = RRF_K,
) -> list[FusedHit]:
    if method not in ("rrf", "weighted"):
        raise ValueError(f"unknown fusion {method!r}: use rrf or weighted")
    weights = weights or {}
    fused: dict[str, FusedHit] = {}
    for retriever, hits in ranked.items():
        weight = weights.get(retriever, 1.0)
        scaled = _scaled(hits)
        for rank, (hit, scale) in enumerate(zip(hits, scaled, strict=True), start=1):
            entry = fused.setdefault(hit.chunk_id, FusedHit(hit))
            entry.ranks[retriever] = rank
            entry.score += weight / (rrf_k + rank) if method == "rrf" else weight * scale
    # Ties break on the best single rank, then on the id: the order is stable.
    return sorted(fused.values(), key=lambda f: (-f.score, min(f.ranks.values()), f.hit.chunk_id))
