"""`docstream status` tells a consumer waiting for its store from one busy with
a full batch, from the worker's Prometheus text, and exits non-zero only when
something it needs could not be read."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest

import ops.status
from ops import cli
from ops.status import pipeline_metrics, render, unreachable

NOW = 1_800_000_000.0


def metrics_text(
    paused: dict[str, float],
    up: dict[str, float] | None = None,
    breakers: dict[str, float] | None = None,
    blocked: dict[tuple[str, str], float] | None = None,
    registry: dict[str, float] | None = None,
    since: dict[str, float] | None = None,
) -> str:
    """Metrics named as the worker's (core/metrics.py), in a registry of our own."""
    reg = CollectorRegistry()
    families: list[tuple[str, list[str], dict[Any, float]]] = [
        ("docstream_consumer_paused", ["stage"], paused),
        ("docstream_consumer_paused_since_seconds", ["stage"], since or {}),
        ("docstream_sink_up", ["sink"], up or {}),
        ("docstream_breaker_open", ["sink"], breakers or {}),
        ("docstream_schema_registry_up", ["stage"], registry or {}),
        ("docstream_sink_blocked", ["sink", "reason"], blocked or {}),
    ]
    for name, labels, values in families:
        gauge = Gauge(name, "", labels, registry=reg)
        for key, value in values.items():
            gauge.labels(*(key if isinstance(key, tuple) else (key,))).set(value)
    return generate_latest(reg).decode()


def consumers(text: str) -> dict[str, dict[str, Any]]:
    return dict(pipeline_metrics(text, now=NOW)["consumers"])


def test_a_paused_consumer_whose_store_is_up_is_busy() -> None:
    text = metrics_text(
        {"embedder": 1, "neo4j-sink": 1},
        up={"neo4j-sink": 1},
        breakers={"neo4j-sink": 0},
        since={"embedder": NOW - 42, "neo4j-sink": NOW - 3},
    )
    found = consumers(text)
    assert found["embedder"]["state"] == "busy"
    assert found["embedder"]["paused_for_s"] == 42
    assert "GPU" in found["embedder"]["action"]
    assert found["neo4j-sink"]["state"] == "busy"
    assert "GPU" not in found["neo4j-sink"]["action"]


@pytest.mark.parametrize(
    ("signals", "evidence"),
    [
        ({"up": {"neo4j-sink": 0}}, "its writes are failing"),
        ({"breakers": {"neo4j-sink": 1}}, "its breaker is open"),
        ({"blocked": {("neo4j-sink", "disk full"): 1}}, "blocked: disk full"),
    ],
)
def test_a_paused_consumer_whose_store_is_down_waits_for_it(
    signals: dict[str, Any], evidence: str
) -> None:
    found = consumers(metrics_text({"neo4j-sink": 1}, **signals))["neo4j-sink"]
    assert found["state"] == "waiting_for_store"
    assert found["why"] == f"waiting for neo4j: {evidence}"
    assert "nothing is lost" in found["action"]


def test_a_blocked_store_asks_for_a_fix_not_a_restart() -> None:
    text = metrics_text({"qdrant-sink": 1}, blocked={("qdrant-sink", "read-only"): 1})
    assert consumers(text)["qdrant-sink"]["action"].startswith("fix what blocks qdrant")
    unblocked = metrics_text({"qdrant-sink": 0}, blocked={("qdrant-sink", "read-only"): 0})
    assert consumers(unblocked)["qdrant-sink"]["state"] == "running", "a 0 gauge is no block"


def test_an_embedder_without_its_schema_registry_waits_for_it() -> None:
    found = consumers(metrics_text({"embedder": 1}, registry={"embedder": 0}))["embedder"]
    assert found["state"] == "waiting_for_store"
    assert found["why"].startswith("waiting for the schema registry")


def test_a_consumer_that_reads_is_running_with_no_pause_time() -> None:
    found = consumers(
        metrics_text({"embedder": 0, "qdrant-sink": 0}, up={"qdrant-sink": 1}, since={})
    )
    assert {s: c["state"] for s, c in found.items()} == {
        "embedder": "running",
        "qdrant-sink": "running",
    }
    assert found["embedder"]["paused_for_s"] is None and found["embedder"]["action"] == ""


def test_without_the_blocked_gauge_the_rest_still_classifies() -> None:
    text = metrics_text({"neo4j-sink": 1}, up={"neo4j-sink": 0})
    assert "docstream_sink_blocked{" not in text
    parsed = pipeline_metrics(text, now=NOW)
    assert parsed["sinks_blocked"] == {}
    assert parsed["consumers"]["neo4j-sink"]["state"] == "waiting_for_store"


def report(**sections: Any) -> dict[str, Any]:
    pipeline = {"source": "x", **pipeline_metrics(metrics_text({"embedder": 1}), now=NOW)}
    return {"at": "now", "pipeline": pipeline, **sections}


def test_the_two_read_differently_as_text() -> None:
    text = metrics_text({"embedder": 1, "neo4j-sink": 1}, up={"neo4j-sink": 0})
    pipeline = {"source": "x", **pipeline_metrics(text, now=NOW)}
    kafka = {"brokers": [], "topics": {}, "missing_topics": [], "groups": {}}
    down = {"error": "not asked here"}
    rendered = render(
        {"at": "now", "kafka": kafka, "pipeline": pipeline, "qdrant": down, "neo4j": down}
    )
    assert "consumer embedder     busy: " in rendered
    assert "consumer neo4j-sink   waiting_for_store: waiting for neo4j" in rendered
    assert "bring neo4j back; nothing is lost" in rendered


def test_unreachable_names_each_section_that_could_not_be_read() -> None:
    found = report(
        qdrant={"error": "ConnectError: refused", "asked": "the worker's /admin/status at h"},
        neo4j={"error": "ServiceUnavailable: down"},
    )
    assert unreachable(found) == [
        "unreachable: qdrant (the worker's /admin/status at h: ConnectError: refused)",
        "unreachable: neo4j (neo4j: ServiceUnavailable: down)",
    ]
    assert unreachable(report()) == [], "a busy consumer is not an error"


@pytest.mark.parametrize(
    ("sections", "code"),
    [
        ({"qdrant": {"chunks": 1}}, 0),
        ({"qdrant": {"error": "ConnectError: refused", "asked": "the worker"}}, 1),
    ],
)
def test_status_exits_0_when_it_read_everything_and_names_what_it_could_not(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sections: dict[str, Any],
    code: int,
) -> None:
    async def fake(*args: Any) -> dict[str, Any]:
        return report(**sections)

    monkeypatch.setattr(ops.status, "cli_status", fake)
    assert cli.main(["status", "--json"]) == code
    out, err = capsys.readouterr()
    assert json.loads(out)["pipeline"]["consumers"]["embedder"]["state"] == "busy"
    assert ("unreachable: qdrant (the worker: ConnectError: refused)" in err) == bool(code)
