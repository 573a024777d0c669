"""Why a stage's consumer is paused. core/kafka/batches.py pauses a consumer
whenever its batch takes over a second, for either of two reasons an operator
must tell apart: its store is down (nothing to do there but bring the store
back) or its batch is simply large (back-pressure, normal under load). The
sink's own gauges say which."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Each sink stage writes to one store (its metrics' `sink` label is the stage's name).
STORES = {"qdrant-sink": "qdrant", "neo4j-sink": "neo4j"}
NOTHING_LOST = "nothing is lost, the consumer resumes by itself"


@dataclass
class Signals:
    """The samples of the worker's metrics that say how each consumer is doing."""

    breakers: dict[str, str] = field(default_factory=dict)
    sinks_up: dict[str, bool] = field(default_factory=dict)
    # docstream_sink_blocked{sink,reason}: a store that needs the operator (may be absent).
    blocked: dict[str, str] = field(default_factory=dict)
    paused: dict[str, bool] = field(default_factory=dict)
    paused_since: dict[str, float] = field(default_factory=dict)
    registry_up: dict[str, bool] = field(default_factory=dict)

    def read(self, name: str, labels: Mapping[str, str], value: float) -> bool:
        """Take one sample if it is a signal; False for any other metric."""
        if name == "docstream_breaker_open":
            self.breakers[labels["sink"]] = "open" if value else "closed"
        elif name == "docstream_sink_up":
            self.sinks_up[labels["sink"]] = bool(value)
        elif name == "docstream_sink_blocked":
            if value:
                self.blocked[labels["sink"]] = labels.get("reason", "")
        elif name == "docstream_consumer_paused":
            self.paused[labels["stage"]] = bool(value)
        elif name == "docstream_consumer_paused_since_seconds":
            if value:
                self.paused_since[labels["stage"]] = value
        elif name == "docstream_schema_registry_up":
            self.registry_up[labels["stage"]] = bool(value)
        else:
            return False
        return True


def classify(signals: Signals, now: float) -> dict[str, dict[str, Any]]:
    """Each consumer's state: `waiting_for_store` (its store is down, open breaker
    or blocked), `busy` (paused while it works on a full batch, store up) or
    `running`, with why and what to do."""
    stages = dict.fromkeys([*signals.paused, *(s for s in STORES if _seen(signals, s))])
    return {stage: _state(signals, stage, now) for stage in stages}


def _seen(signals: Signals, stage: str) -> bool:
    return stage in signals.sinks_up or stage in signals.breakers or stage in signals.blocked


def _state(signals: Signals, stage: str, now: float) -> dict[str, Any]:
    since = signals.paused_since.get(stage)
    paused_for = round(max(0.0, now - since), 1) if since and signals.paused.get(stage) else None
    state: dict[str, Any] = {"state": "running", "why": "reading its topic", "action": ""}
    if waits := _waiting_for(signals, stage):
        what, why = waits
        fix = f"fix what blocks {what}" if stage in signals.blocked else f"bring {what} back"
        state = {
            "state": "waiting_for_store",
            "why": f"waiting for {what}: {why}",
            "action": f"{fix}; {NOTHING_LOST}",
        }
    elif signals.paused.get(stage):
        remedy = "scale out or use a GPU" if stage == "embedder" else "scale out"
        state = {
            "state": "busy",
            "why": "its batch takes longer than 1 s (back-pressure, normal under load)",
            "action": f"none needed; {remedy} if its lag keeps growing",
        }
    return {**state, "paused_for_s": paused_for}


def _waiting_for(signals: Signals, stage: str) -> tuple[str, str] | None:
    """What a stage waits for and the evidence, or None when nothing is down."""
    if signals.registry_up.get(stage) is False:
        return "the schema registry", "it does not answer (docstream_schema_registry_up 0)"
    store = STORES.get(stage)
    if store is None:
        return None
    reasons = []
    if stage in signals.blocked:
        reasons.append(f"blocked: {signals.blocked[stage] or 'no reason given'}")
    if signals.breakers.get(stage) == "open":
        reasons.append("its breaker is open")
    if signals.sinks_up.get(stage) is False:
        reasons.append("its writes are failing")
    return (store, ", ".join(reasons)) if reasons else None
