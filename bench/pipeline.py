"""Shared by the benchmarks: bring up the local stack, run a worker on fresh
topics and a fresh Qdrant folder, and talk to it over HTTP like a user."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from core.settings import QdrantSettings, Settings
from tools.stack.local import LocalStack, own_qdrant_server, qdrant_binary
from tools.stack.ports import free_port

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


@dataclass
class RunningPipeline:
    settings: Settings
    base_url: str
    env: dict[str, str]
    log_path: Path
    # The services' processes, by name (kafka, neo4j; qdrant for a server).
    service_pids: dict[str, int]


ENGINES = ("edge", "server")


@dataclass(frozen=True)
class VectorEngine:
    env: dict[str, str]  # the Qdrant settings of the run's processes
    server_pid: int | None  # a server of the run's own


@contextmanager
def vector_engine(engine: str, workdir: Path, run: str) -> Iterator[VectorEngine]:
    """A run's Qdrant: embedded (`edge` or `local`) in the run's folder, or a
    Qdrant server of the run's own (QDRANT_BIN, else `qdrant` on PATH),
    started beside the stack and stopped and removed after, holding the run's
    collection. Never the stack's own server: a bench must not share its data."""
    if engine != "server":
        yield VectorEngine({"QDRANT_PATH": str(workdir / "qdrant"), "QDRANT_ENGINE": engine}, None)
        return
    folder = workdir / "qdrant-server"
    try:
        with own_qdrant_server(folder, qdrant_binary(os.environ)) as server:
            yield VectorEngine({"QDRANT_URL": server.url, "QDRANT_COLLECTION": run}, server.pid)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class SharedStack:
    stack: LocalStack
    started: list[str]  # what `up` started (the rest already answered)
    pids: dict[str, int]  # every service's process by name, a run's Qdrant server included


def shared_stack(settings: Settings, vectors: VectorEngine) -> SharedStack:
    """Brings up the stack's Kafka and Neo4j for a run. The stack is not told
    of a run's own Qdrant server: it would start another at that address."""
    stack = LocalStack(replace(settings, qdrant=QdrantSettings()))
    started = stack.up(log=True)
    pids = {s.name: s.pid for s in stack.status() if s.pid is not None}
    if vectors.server_pid is not None:
        pids["qdrant"] = vectors.server_pid
    return SharedStack(stack, started, pids)


@contextmanager
def pipeline(
    name: str,
    extra_env: dict[str, str] | None = None,
    cleanup: Callable[[Settings], None] | None = None,
    engine: str = "edge",
) -> Iterator[RunningPipeline]:
    """Stack (started if nothing answers, stopped after), plus one worker with the
    API over the Qdrant `engine` names. `cleanup` runs once the worker has
    stopped and while the stack still answers: it drops what the run left on
    the shared services."""
    run = f"bench-{name}-{uuid.uuid4().hex[:6]}"
    workdir = REPO / ".stack" / "bench" / run
    workdir.mkdir(parents=True, exist_ok=True)
    with (
        vector_engine(engine, workdir, run) as vectors,
        _pipeline(run, workdir, vectors, extra_env or {}, cleanup) as running,
    ):
        yield running


@contextmanager
def _pipeline(
    run: str,
    workdir: Path,
    vectors: VectorEngine,
    extra_env: dict[str, str],
    cleanup: Callable[[Settings], None] | None,
) -> Iterator[RunningPipeline]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "QDRANT_URL"},
        "DOCSTREAM_TOPIC_PREFIX": f"{run}.",
        "DOCSTREAM_GROUP_ID": run,
        "NEO4J_GRAPH": run,  # its own generations: nothing shared with other runs
        "DOCSTREAM_API_PORT": str(port),
        "DOCSTREAM_RATE_LIMIT_PER_S": "0",
        "DOCSTREAM_LOG_LEVEL": "WARNING",
        **vectors.env,
        **extra_env,
    }
    settings = Settings.from_env(env)
    services = shared_stack(settings, vectors)
    log_path = workdir / "worker.log"
    with log_path.open("ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", "worker"], cwd=REPO, env=env, stdout=log, stderr=log
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, worker, log_path)
        yield RunningPipeline(settings, base_url, env, log_path, services.pids)
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
            services.stack.down(only=services.started)


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
