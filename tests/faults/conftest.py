"""The fault-injection suite (`make test-faults`): the integration fixtures (the
real services of tests/services, the local stack or containers, which `stack`
stops and starts for the scenarios; a worker per module on its own topics,
graph and Qdrant folder) plus a `verdict` recorder.

Every scenario ends with one verdict line: what it published, the fault, what
was lost, duplicated or dead-lettered, and how long recovery took. The lines
are printed at the end of the run and written to reports/faults.json, which is
where docs/RELIABILITY.md's table comes from."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import (  # noqa: F401  (fixtures, re-exported for pytest)
    base_settings,
    engine,
    neo4j_driver,
    pipeline,
    run_id,
    session_id,
    stack,
)

REPORT = Path(__file__).resolve().parents[2] / "reports" / "faults.json"


@dataclass
class Verdict:
    scenario: str
    load: str
    fault: str
    lost: int
    duplicated: int
    recovered_s: float | None
    details: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        recovered = "-" if self.recovered_s is None else f"{self.recovered_s:.1f}s"
        extra = " ".join(f"{k}={v}" for k, v in self.details.items())
        return (
            f"[{self.scenario}] load: {self.load} | fault: {self.fault} | lost={self.lost} "
            f"duplicated={self.duplicated} recovered_in={recovered} {extra}".rstrip()
        )


VERDICTS: list[Verdict] = []


@pytest.fixture
def verdict() -> Iterator[list[Verdict]]:
    """Append a Verdict to the list; it is printed at once and kept for the report."""
    recorded: list[Verdict] = []
    yield recorded
    for one in recorded:
        print("\n" + one.line())
        VERDICTS.append(one)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not VERDICTS:
        return
    terminalreporter.section("fault verdicts")
    for one in VERDICTS:
        terminalreporter.write_line(one.line())
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps([asdict(v) for v in VERDICTS], indent=2) + "\n")
    terminalreporter.write_line(f"written: {REPORT.relative_to(REPORT.parents[1])}")
