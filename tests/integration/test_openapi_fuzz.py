"""Schemathesis against the served `/openapi.json`, on the real worker and stores:
every operation, generated valid and invalid inputs, and not one 5xx.

It runs Schemathesis's own CLI, so what is fuzzed is exactly the document a
client downloads; writes go out with the API key, so intake is fuzzed too (the
documents land on this run's own topics)."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import TEST_API_KEY, Pipeline

pytestmark = pytest.mark.integration
MAX_EXAMPLES = 25


def test_no_generated_request_gets_a_server_error(pipeline: Pipeline, tmp_path: Path) -> None:
    # A failure prints its seed; DOCSTREAM_FUZZ_SEED=<seed> replays that run.
    seed = int(os.environ.get("DOCSTREAM_FUZZ_SEED") or random.randrange(2**31))
    report = tmp_path / "schemathesis.xml"
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{pipeline.base_url}/openapi.json",
        "--url",
        pipeline.base_url,
        "--checks",
        "not_a_server_error",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(seed),
        "--header",
        f"X-API-Key: {TEST_API_KEY}",
        "--request-timeout",
        "30",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
    ]
    result = pipeline.run(command, timeout_s=540)
    output = result.stdout.decode(errors="replace")
    assert result.returncode == 0, f"seed {seed}:\n{output[-8000:]}"
    # A run that tested nothing would also exit 0: the report must list operations.
    assert report.read_text().count("<testcase") >= 5, output[-3000:]
