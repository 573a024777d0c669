"""`docstream rebuild`/`replay` follow the job: each store's line while it
works, and a finished store's line once (ops/admin_client.py)."""

from __future__ import annotations

from typing import Any

import pytest

from ops import admin_client


def target(name: str, phase: str, per_s: float) -> dict[str, Any]:
    return {
        "target": name,
        "phase": phase,
        "generation": "g1",
        "written": 10,
        "per_s": per_s,
        "unit": "chunks",
        "offsets_left": 0,
        "eta_s": None,
        "previous": None,
        "error": None,
    }


class Reports:
    def __init__(self, *reports: dict[str, Any]) -> None:
        self.reports = list(reports)

    def get(self, _path: str) -> Any:
        report = self.reports.pop(0)
        return type("Answer", (), {"json": staticmethod(lambda: report)})


def test_a_finished_store_is_said_once_while_the_other_drains(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin_client, "POLL_S", 0)
    client = Reports(
        {
            "running": True,
            "targets": [target("qdrant", "done", 900), target("neo4j", "filling", 500)],
        },
        {
            "running": True,
            "targets": [target("qdrant", "done", 600), target("neo4j", "filling", 480)],
        },
        {
            "running": False,
            "targets": [target("qdrant", "done", 400), target("neo4j", "done", 470)],
        },
    )
    assert admin_client._follow(client, "/admin/rebuild", "rebuild") == 0  # type: ignore[arg-type]
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1:3] for line in lines] == [
        ["qdrant", "done"],
        ["neo4j", "filling"],
        ["neo4j", "filling"],
        ["neo4j", "done"],
    ]
