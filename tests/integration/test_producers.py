"""Producers on the real broker: the publish CLI and the HTTP intake. Nothing is
reported as sent that Kafka did not acknowledge."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.correlation import CORRELATION_HEADER, decode_headers
from schemas.codec import codec_for
from tests.integration.conftest import TEST_API_KEY, Pipeline
from tests.integration.helpers import read_all
from tools.stack.local import LocalStack

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {TEST_API_KEY}"}


def events_on_documents(pipeline: Pipeline) -> list[tuple[dict[str, Any], dict[str, str]]]:
    settings = pipeline.settings.kafka
    messages = read_all(settings, settings.topics.documents)
    return [
        (codec_for("DocumentEvent").decode(m.value()), decode_headers(m.headers()))
        for m in messages
        if m.value() and m.value()[:2] == b"\xc3\x01"
    ]


def test_the_cli_publishes_a_folder_a_jsonl_file_and_stdin_and_reports_what_failed(
    pipeline: Pipeline, tmp_path: Path, run_id: str
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "one.md").write_text("# One\n\nThe first file.")
    (folder / "two.txt").write_text("The second file.")
    (folder / "broken.txt").write_bytes(b"\xff\xfe not utf-8 \xfa")
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text(json.dumps({"doc_id": f"{run_id}-row", "text": "A row."}) + "\n")
    stdin_row = json.dumps({"doc_id": f"{run_id}-stdin", "text": "From stdin."})
    correlation_id = f"cli-{uuid.uuid4().hex[:8]}"

    result = pipeline.cli(
        "publish",
        str(folder),
        str(jsonl),
        "-",
        "--correlation-id",
        correlation_id,
        stdin=stdin_row.encode(),
    )

    assert result.returncode == 1, "a file that cannot be read makes the run fail"
    summary = json.loads(result.stdout)
    assert (summary["sent"], summary["failed"]) == (4, 1)
    assert "broken.txt" in result.stderr.decode()
    mine = [e for e, h in events_on_documents(pipeline) if h[CORRELATION_HEADER] == correlation_id]
    assert sorted(e["doc_id"] for e in mine) == sorted(
        ["one.md", "two.txt", f"{run_id}-row", f"{run_id}-stdin"]
    )


def test_post_without_a_key_is_401_and_writes_nothing(pipeline: Pipeline, run_id: str) -> None:
    doc_id = f"{run_id}-unauthorised"
    response = httpx.post(
        f"{pipeline.base_url}/documents", json={"doc_id": doc_id, "text": "Should not land."}
    )
    assert response.status_code == 401
    wrong = httpx.post(
        f"{pipeline.base_url}/documents",
        json={"doc_id": doc_id, "text": "Nor this."},
        headers={"X-API-Key": "wrong"},
    )
    assert wrong.status_code == 401
    assert not [e for e, _ in events_on_documents(pipeline) if e["doc_id"] == doc_id]


def test_post_with_a_key_is_202_after_exactly_one_event_is_on_the_topic(
    pipeline: Pipeline, run_id: str
) -> None:
    doc_id = f"{run_id}-posted"
    response = httpx.post(
        f"{pipeline.base_url}/documents",
        json={"doc_id": doc_id, "title": "Posted", "text": "Sent over HTTP."},
        headers={**AUTH, "X-Correlation-ID": "http-corr-1"},
    )
    assert response.status_code == 202, response.text
    assert response.json()["correlation_id"] == "http-corr-1"
    # 202 comes after Kafka's acknowledgement: the event is there at once.
    mine = [(e, h) for e, h in events_on_documents(pipeline) if e["doc_id"] == doc_id]
    assert len(mine) == 1
    assert mine[0][1][CORRELATION_HEADER] == "http-corr-1"
    assert mine[0][0]["version"] == response.json()["version"]


def test_oversized_and_malformed_bodies_are_refused_with_the_reason(pipeline: Pipeline) -> None:
    too_big = httpx.post(
        f"{pipeline.base_url}/documents",
        json={"doc_id": "big", "text": "x" * (6 * 1024 * 1024)},
        headers=AUTH,
    )
    assert too_big.status_code == 413
    malformed = httpx.post(
        f"{pipeline.base_url}/documents",
        content=b'{"doc_id": "x", "text": ',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert malformed.status_code == 422
    assert malformed.json()["field"] == "body" and "JSON" in malformed.json()["detail"]


def test_with_the_broker_stopped_nothing_is_reported_as_sent(
    pipeline: Pipeline, stack: LocalStack, tmp_path: Path
) -> None:
    assert stack.down(only=["kafka"]) == ["kafka"], "this test stops the stack's own broker"
    try:
        started = time.monotonic()
        response = httpx.post(
            f"{pipeline.base_url}/documents",
            json={"doc_id": "while-down", "text": "No broker."},
            headers=AUTH,
            timeout=30,
        )
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert response.headers["retry-after"]
        # Bounded by the configured intake timeout (5 s here), not a hang.
        assert elapsed < 5 + 5

        (tmp_path / "doc.md").write_text("No broker for me.")
        result = pipeline.cli("publish", str(tmp_path / "doc.md"), "--timeout", "5")
        assert result.returncode != 0
        assert b'"sent": 0' in result.stdout or not result.stdout
    finally:
        stack.start("kafka")
