"""The query examples of docs/API.md run against a real worker: each curl and
Python block of its query sections, with the documented base URL replaced by
the test worker's. The follow examples keep running while a document is
published and deleted, and must show its hit and its retraction."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import REPO, TEST_API_KEY, Pipeline

pytestmark = pytest.mark.integration
DOC = REPO / "docs" / "API.md"
DOCUMENTED_URL = "http://127.0.0.1:8000"
AUTH = {"X-API-Key": TEST_API_KEY}
FENCE = re.compile(r"```(bash|python)\n(.*?)```", re.S)


def query_blocks() -> list[tuple[str, str]]:
    """The fenced bash and Python blocks between `## Query` and `## The search page`."""
    text = DOC.read_text()
    section = text[text.index("\n## Query\n") : text.index("\n## The search page\n")]
    return [(lang, body) for lang, body in FENCE.findall(section)]


def blocks(lang: str, follow: bool) -> list[str]:
    return [b for kind, b in query_blocks() if kind == lang and ("follow" in b) == follow]


def test_the_doc_has_the_examples_this_file_runs() -> None:
    assert len(blocks("bash", False)) == 2 and len(blocks("python", False)) == 1
    assert len(blocks("bash", True)) == 1 and len(blocks("python", True)) == 1


def command(lang: str, body: str, base_url: str) -> list[str]:
    body = body.replace(DOCUMENTED_URL, base_url)
    return ["bash", "-c", body] if lang == "bash" else [sys.executable, "-c", body]


def test_the_one_shot_curl_examples_answer(pipeline: Pipeline) -> None:
    sse, as_json = blocks("bash", False)
    out = subprocess.run(command("bash", sse, pipeline.base_url), capture_output=True, timeout=60)
    text = out.stdout.decode()
    assert out.returncode == 0, out.stderr
    assert text.startswith("retry: ") and "event: meta" in text and "event: done" in text
    out = subprocess.run(
        command("bash", as_json, pipeline.base_url), capture_output=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert '"hits"' in out.stdout.decode() and '"timings"' in out.stdout.decode()


def test_the_one_shot_python_example_answers(pipeline: Pipeline) -> None:
    [example] = blocks("python", False)
    out = subprocess.run(
        command("python", example, pipeline.base_url), capture_output=True, timeout=120, cwd=REPO
    )
    assert out.returncode == 0, out.stderr.decode()
    assert re.search(r"^took [\d.]+ ms$", out.stdout.decode(), re.M)


@contextmanager
def running(argv: list[str]) -> Iterator[queue.Queue[str]]:
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO)
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            lines.put(raw.decode().rstrip("\r\n"))

    threading.Thread(target=read, daemon=True).start()
    try:
        yield lines
    finally:
        process.terminate()
        process.wait(30)


def wait_line(lines: queue.Queue[str], pattern: str, timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(line)
        if re.search(pattern, line):
            return line
    raise AssertionError(f"no line like {pattern!r} in {timeout_s}s; saw {seen[-20:]}")


def publish(pipeline: Pipeline, doc_id: str) -> None:
    text = "How kafka partitions spread a topic's load over brokers."
    answer = httpx.post(
        f"{pipeline.base_url}/documents", json={"doc_id": doc_id, "text": text}, headers=AUTH
    )
    assert answer.status_code == 202, answer.text


def delete(pipeline: Pipeline, doc_id: str) -> None:
    answer = httpx.delete(f"{pipeline.base_url}/documents/{doc_id}", headers=AUTH)
    assert answer.status_code == 202, answer.text


def test_the_follow_curl_example_shows_a_new_document(pipeline: Pipeline, run_id: str) -> None:
    [example] = blocks("bash", True)
    doc_id = f"{run_id}-curl-follow"
    with running(command("bash", example, pipeline.base_url)) as lines:
        wait_line(lines, r"^event: done$")
        publish(pipeline, doc_id)
        wait_line(lines, r"^event: hit$")
        wait_line(lines, rf'"doc_id": "{re.escape(doc_id)}"')
        delete(pipeline, doc_id)
        wait_line(lines, r"^event: retract$")


def test_the_follow_python_example_shows_a_new_document_and_its_retraction(
    pipeline: Pipeline, run_id: str
) -> None:
    [example] = blocks("python", True)
    doc_id = f"{run_id}-py-follow"
    with running(command("python", example, pipeline.base_url)) as lines:
        wait_line(lines, r"^answered; following$")
        publish(pipeline, doc_id)
        wait_line(lines, rf"^hit {re.escape(doc_id)} ")
        delete(pipeline, doc_id)
        wait_line(lines, rf"^gone {re.escape(doc_id)} ")


def test_examples_name_the_documented_address() -> None:
    assert all(DOCUMENTED_URL in body for _, body in query_blocks())
    assert Path(DOC).exists()
