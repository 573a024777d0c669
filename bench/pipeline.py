"""Shared by the benchmarks: bring up the local stack, run a worker on fresh
topics and a fresh Qdrant folder, and talk to it over HTTP like a user."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from core.settings import Settings
from tools.stack.local import LocalStack

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningPipeline:
    settings: Settings
    base_url: str
    env: dict[str, str]
    log_path: Path


@contextmanager
def pipeline(
    name: str,
    extra_env: dict[str, str] | None = None,
    cleanup: Callable[[Settings], None] | None = None,
) -> Iterator[RunningPipeline]:
    """Stack (started if nothing answers, stopped after), plus one worker with the
    API. `cleanup` runs once the worker has stopped and while the stack still
    answers: it drops what the run left on the shared services."""
    run = f"bench-{name}-{uuid.uuid4().hex[:6]}"
    workdir = REPO / ".stack" / "bench" / run
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "DOCSTREAM_TOPIC_PREFIX": f"{run}.",
        "DOCSTREAM_GROUP_ID": run,
        "NEO4J_GRAPH": run,  # its own generations: nothing shared with other runs
        "QDRANT_PATH": str(workdir / "qdrant"),
        "DOCSTREAM_API_PORT": str(port),
        "DOCSTREAM_RATE_LIMIT_PER_S": "0",
        "DOCSTREAM_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    env.pop("QDRANT_URL", None)
    settings = Settings.from_env(env)
    stack = LocalStack(settings)
    started = stack.up(log=True)
    log_path = workdir / "worker.log"
    with log_path.open("ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", "worker"], cwd=REPO, env=env, stdout=log, stderr=log
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, worker, log_path)
        yield RunningPipeline(settings, base_url, env, log_path)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
        try:
            if cleanup is not None:
                cleanup(settings)
        finally:
            stack.down(only=started)


def wait_ready(
    base_url: str,
    process: subprocess.Popen[bytes],
    log_path: Path,
    probe: str = "/health/ready",
) -> None:
    """Until `probe` answers 200; fails at once if the process exits."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"{probe} never answered; the process exited:\n{log_path.read_text()[-3000:]}"
            )
        try:
            if httpx.get(f"{base_url}{probe}", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"{probe} did not answer 200 within 300 s")


def write_record(name: str, record: dict[str, Any], path: Path | None = None) -> Path:
    """The run's JSON record, in bench/results/<name>.json unless `path` says."""
    path = path or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"written: {path}")
    return path


async def running_backend(run: RunningPipeline) -> str:
    """The backend the worker reports (docstream_embedder_backend)."""
    async with httpx.AsyncClient(base_url=run.base_url, timeout=30) as client:
        text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "docstream_embedder_backend" and sample.value == 1:
                return str(sample.labels.get("backend"))
    return "unknown"
