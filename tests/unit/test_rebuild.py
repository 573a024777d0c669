"""The rebuild's control route and its progress figures (the rebuild itself
runs against real Kafka and stores in tests/integration/test_rebuild.py)."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.testclient import TestClient

from api.rebuild import RebuildControl, rebuild_routes
from ops.rebuild import Progress
from ops.rebuild_client import progress_line

KEY = "admin-key"


class FakeRun:
    def __init__(self, target: str) -> None:
        self.target = target
        self.running = True

    def cancel(self) -> None:
        self.running = False

    def report(self) -> dict[str, Any]:
        return {"running": self.running, "targets": [Progress(self.target).as_dict()]}


def client(keys: frozenset[str] = frozenset({KEY})) -> tuple[TestClient, list[FakeRun]]:
    started: list[FakeRun] = []

    def start(target: str) -> FakeRun:
        started.append(FakeRun(target))
        return started[-1]

    control = RebuildControl(start, keys)
    return TestClient(Starlette(routes=rebuild_routes(control))), started


def test_a_rebuild_needs_a_key_and_a_known_target() -> None:
    api, started = client()
    assert api.post("/admin/rebuild", json={"target": "all"}).status_code == 401
    wrong = api.post("/admin/rebuild", json={"target": "x"}, headers={"X-API-Key": KEY})
    assert wrong.status_code == 422 and wrong.json()["field"] == "target"
    assert client(frozenset())[0].get("/admin/rebuild").status_code == 401, "no keys: closed"
    assert started == []


def test_one_rebuild_at_a_time_and_it_can_be_interrupted() -> None:
    api, started = client()
    auth = {"X-API-Key": KEY}
    first = api.post("/admin/rebuild", json={"target": "neo4j"}, headers=auth)
    assert first.status_code == 202 and first.json()["targets"][0]["target"] == "neo4j"
    assert api.post("/admin/rebuild", headers=auth).status_code == 409
    assert api.delete("/admin/rebuild", headers=auth).status_code == 202
    assert not started[0].running
    assert api.delete("/admin/rebuild", headers=auth).status_code == 409
    assert api.post("/admin/rebuild", headers=auth).status_code == 202  # default: all
    assert [run.target for run in started] == ["neo4j", "all"]


def test_progress_gives_rate_and_eta_and_a_readable_line() -> None:
    progress = Progress("qdrant", phase="filling", generation="chunks-g1", written=500, lag=1000)
    progress.started_at -= 10
    report = progress.as_dict()
    assert 49 < report["chunks_per_s"] < 51
    assert 19 < report["eta_s"] < 21
    line = progress_line(report)
    assert "qdrant" in line and "chunks-g1" in line and "left=1000" in line and "eta=20s" in line
