"""The rebuild's control route and its progress figures (the rebuild itself
runs against real Kafka and stores in tests/integration/test_rebuild.py)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from api.rebuild import RebuildControl, ReplayRequest, rebuild_routes
from core.positions import StartAt
from ops.admin_client import progress_line
from ops.jobs.rebuild import Progress, Rebuild, RebuildRefused, TargetRebuild

KEY = "admin-key"


class FakeRun:
    def __init__(
        self, target: str, at: StartAt | None = None, request: ReplayRequest | None = None
    ) -> None:
        self.target = target
        self.at = at
        self.request = request
        self.running = True

    def cancel(self) -> None:
        self.running = False

    def report(self) -> dict[str, Any]:
        return {"running": self.running, "targets": [Progress(self.target).as_dict()]}


def client(keys: frozenset[str] = frozenset({KEY})) -> tuple[TestClient, list[FakeRun]]:
    started: list[FakeRun] = []

    def start(target: str, at: StartAt | None) -> FakeRun:
        started.append(FakeRun(target, at))
        return started[-1]

    async def replay(request: ReplayRequest) -> FakeRun:
        if request.max_tokens == 0:
            raise ValueError("chunk max_tokens must be at least 1, got 0")
        started.append(FakeRun("replay", request=request))
        return started[-1]

    control = RebuildControl(start, keys, replay=replay)
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
    assert 49 < report["per_s"] < 51
    assert 19 < report["eta_s"] < 21
    line = progress_line(report)
    assert "qdrant" in line and "chunks-g1" in line and "left=1000" in line and "eta=20s" in line


def test_a_repair_starts_from_an_offset_or_a_time_and_a_bad_one_is_refused() -> None:
    api, started = client()
    auth = {"X-API-Key": KEY}
    bad = api.post("/admin/rebuild", json={"from_offset": "zero"}, headers=auth)
    assert bad.status_code == 422 and bad.json()["field"] == "from_offset"
    bad = api.post("/admin/rebuild", json={"from_time": "yesterday"}, headers=auth)
    assert bad.status_code == 422 and bad.json()["field"] == "from_time"
    both = api.post("/admin/rebuild", json={"from_offset": "1", "from_time": "2026"}, headers=auth)
    assert both.status_code == 422 and "not both" in both.json()["detail"]
    assert started == []
    ok = api.post(
        "/admin/rebuild", json={"target": "qdrant", "from_offset": "0:5,1:7"}, headers=auth
    )
    assert ok.status_code == 202
    assert started[0].at == StartAt(offsets={0: 5, 1: 7})


def test_a_replay_is_one_more_job_and_says_what_was_wrong_with_its_profile() -> None:
    api, started = client()
    auth = {"X-API-Key": KEY}
    assert api.post("/admin/replay", json={}).status_code == 401
    wrong = api.post("/admin/replay", json={"topic": "chunks.embedded"}, headers=auth)
    assert wrong.status_code == 422 and wrong.json()["field"] == "topic"
    negative = api.post("/admin/replay", json={"max_tokens": -3}, headers=auth)
    assert negative.status_code == 422 and negative.json()["field"] == "max_tokens"
    refused = api.post("/admin/replay", json={"max_tokens": 0}, headers=auth)
    assert refused.status_code == 422 and "at least 1" in refused.json()["detail"]
    for model in ("-m", "a b", "m;rm", "//m"):
        bad = api.post("/admin/replay", json={"model": model}, headers=auth)
        assert bad.status_code == 422 and bad.json()["field"] == "model", model
    assert started == []
    ok = api.post("/admin/replay", json={"max_tokens": 64, "model": "m"}, headers=auth)
    assert ok.status_code == 202
    assert started[0].request == ReplayRequest("documents", "m", 64, None)
    assert api.post("/admin/rebuild", headers=auth).status_code == 409, "one job at a time"
    assert (
        api.post("/admin/replay", json={"model": "/models/minilm"}, headers=auth).status_code == 409
    )
    assert api.get("/admin/rebuild", headers=auth).json()["running"]
    assert api.delete("/admin/replay", headers=auth).status_code == 202
    assert not started[0].running


class Part:
    """A target's rebuild that ends after `after_s`, refused or done."""

    def __init__(self, name: str, after_s: float, refuse: bool) -> None:
        self.progress = Progress(name)
        self.after_s = after_s
        self.refuse = refuse

    async def run(self) -> Progress:
        self.progress.phase = "filling"
        await asyncio.sleep(self.after_s)
        if self.refuse:
            self.progress.phase = "refused"
            raise RebuildRefused(f"{self.progress.target} refused")
        self.progress.phase = "done"
        return self.progress


def test_a_rebuild_of_two_targets_runs_until_both_ended_even_when_one_was_refused() -> None:
    """One target refused first must not end the job while the other still fills."""

    async def run() -> dict[str, Any]:
        parts = [Part("neo4j", 0.0, refuse=True), Part("qdrant", 0.2, refuse=False)]
        rebuild = Rebuild(cast(list[TargetRebuild], parts))
        rebuild.start()
        assert rebuild.task is not None
        with pytest.raises(RebuildRefused, match="neo4j refused"):
            await rebuild.task
        return rebuild.report()

    report = asyncio.run(run())
    assert report["running"] is False
    assert [t["phase"] for t in report["targets"]] == ["refused", "done"]
