"""The pipeline's part of the status, read from the worker's Prometheus metrics
(core/metrics.py): breakers, sinks, consumers, events, freshness, the profile."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

import httpx
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ops.status.consumers import Signals, classify

QUANTILES = (0.5, 0.95, 0.99)


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """Prometheus' histogram_quantile over cumulative (upper bound, count) buckets:
    linear within the bucket the rank falls in; the highest finite bound when it
    falls in +Inf; None with no observations."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in ordered:
        if count >= rank:
            if math.isinf(upper):
                return lower
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


def pipeline_metrics(text: str, now: float | None = None) -> dict[str, Any]:
    """Breakers, sinks, consumers (and why each is paused), events and freshness
    from Prometheus text; `now` (Unix time) dates the pauses."""
    signals = Signals()
    events: dict[str, dict[str, float]] = {}
    buckets: dict[str, list[tuple[float, float]]] = {}
    profile: dict[str, Any] | None = None
    backend: str | None = None
    follow = FollowFigures()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels, value = sample.labels, sample.value
            if signals.read(sample.name, labels, value) or follow.read(sample.name, labels, value):
                continue
            if sample.name == "docstream_events_total":
                events.setdefault(labels["stage"], {})[labels["outcome"]] = value
            elif sample.name == "docstream_profile" and value:
                profile = {**labels, "configured": labels["configured"] == "true"}
            elif sample.name == "docstream_embedder_backend" and value:
                backend = labels["backend"]
            elif sample.name == "docstream_freshness_seconds_bucket":
                buckets.setdefault(labels["sink"], []).append((float(labels["le"]), value))
    freshness = {
        sink: {
            "count": int(max(c for _, c in series)),
            **{f"p{round(q * 100)}": histogram_quantile(q, series) for q in QUANTILES},
        }
        for sink, series in buckets.items()
    }
    return {
        "breakers": signals.breakers,
        "sinks_up": signals.sinks_up,
        "sinks_blocked": signals.blocked,
        "consumers_paused": signals.paused,
        "consumers": classify(signals, time.time() if now is None else now),
        "events": events,
        "freshness_s": freshness,
        "profile": profile,
        "embedder_backend": backend,
        "follow": follow.report(time.time() if now is None else now),
    }


class FollowFigures:
    """Follow mode of the query edge: followers, notifications (and their rate
    since the process started), the delay from the last sink's write to the
    event sent, and followers refused or ended by reason."""

    def __init__(self) -> None:
        self.followers: float | None = None
        self.notifications = 0.0
        self.started: float | None = None
        self.delay: list[tuple[float, float]] = []
        self.closed: dict[str, float] = {}

    def read(self, name: str, labels: dict[str, str], value: float) -> bool:
        if name == "docstream_followers":
            self.followers = value
        elif name == "docstream_follow_notifications_total":
            self.notifications = value
        elif name == "process_start_time_seconds":
            self.started = value
        elif name == "docstream_follow_delay_seconds_bucket":
            self.delay.append((float(labels["le"]), value))
        elif name == "docstream_follow_closed_total":
            self.closed[labels["reason"]] = value
        else:
            return False
        return True

    def report(self, now: float) -> dict[str, Any] | None:
        if self.followers is None:  # not an API process
            return None
        up_s = now - self.started if self.started else None
        return {
            "followers": int(self.followers),
            "notifications": int(self.notifications),
            "notifications_per_s": round(self.notifications / up_s, 3) if up_s else None,
            "delay_s": {
                "count": int(max((c for _, c in self.delay), default=0)),
                **{f"p{round(q * 100)}": histogram_quantile(q, self.delay) for q in QUANTILES},
            },
            "closed": {k: int(v) for k, v in sorted(self.closed.items()) if v},
        }


async def local_metrics() -> dict[str, Any]:
    """This process's own metrics: in the worker, the pipeline's."""
    return {"source": "in-process", **pipeline_metrics(generate_latest().decode())}


async def remote_metrics(url: str, timeout_s: float = 3.0) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        response = await client.get(url)
        response.raise_for_status()
    return {"source": url, **pipeline_metrics(response.text)}
