"""Integration fixtures: a real Kafka and Neo4j (the local stack's, or containers
where a Docker engine answers: tests/services; started here when nothing answers
at the configured addresses, and stopped after), a real embedded Qdrant, and
the real worker process with the API beside it.

Every run gets its own topic prefix, consumer group, Qdrant folder and doc-id
prefix, so runs never see each other's data on a shared broker or graph."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from neo4j import Driver, GraphDatabase

from core.settings import Settings
from tests import optional
from tests.services import Services, start_services
from tools.stack.local import own_qdrant_server, qdrant_binary
from tools.stack.ports import free_port

REPO = Path(__file__).resolve().parents[2]
TEST_API_KEY = "integration-test-key"


@pytest.fixture(scope="session")
def stack() -> Iterator[Services]:
    """The session's services (DOCSTREAM_TEST_SERVICES: containers where a Docker
    engine answers, else the local stack); services already answering are used
    as they are. Their addresses go into os.environ for the session, in the
    variables Settings reads, so the settings below and every worker process
    (its environment starts from os.environ) use them."""
    services = start_services(os.environ)
    saved = {key: os.environ.get(key) for key in services.env}
    os.environ.update(services.env)
    try:
        yield services
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        services.close()


@pytest.fixture(scope="session")
def base_settings(stack: Services) -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def session_id() -> str:
    return f"it{uuid.uuid4().hex[:8]}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module that sets `ENGINES = ("edge", "server")` runs its tests once on
    each Qdrant engine (module-scoped: one worker per engine, the Edge pass
    first). Every module whose tests read, write or rebuild the vector store
    does; the others run on the embedded default (`engine` below), as what
    they show does not depend on it (the HTTP contract, producers, tracing,
    the browser page, `make run`'s supervision), or say in the module why it
    cannot apply. test_secured runs its own server over TLS. Without a server
    binary the server pass is skipped, with one line saying how to provide it."""
    engines = getattr(metafunc.module, "ENGINES", None)
    if engines and "engine" in metafunc.fixturenames:
        metafunc.parametrize("engine", engines, scope="module")


@pytest.fixture(scope="module")
def engine() -> str:
    """Which Qdrant the module's worker uses: "edge" (embedded) or "server"."""
    return "edge"


@pytest.fixture(scope="module")
def run_id(session_id: str, engine: str) -> str:
    """Names the module's topics, group, graph and doc ids. The server pass
    gets names of its own (a suffix no Edge prefix like `<id>-rb-` matches),
    so neither pass reads the other's documents in the shared broker or graph."""
    return session_id if engine == "edge" else f"{session_id}s"


def qdrant_env(
    request: pytest.FixtureRequest, engine: str, run_id: str, folder: Path
) -> dict[str, str]:
    """The worker's Qdrant settings: an embedded folder of its own, or a
    collection of its own (alias) on the session's Qdrant server."""
    if engine == "edge":
        return {"QDRANT_PATH": str(folder)}
    module = request.module.__name__.rsplit(".", 1)[-1]
    url = request.getfixturevalue("qdrant_server")
    return {"QDRANT_URL": url, "QDRANT_COLLECTION": f"{run_id}_{module}"}


@dataclass
class Pipeline:
    """A worker process (with the API) on this run's topics, and its environment."""

    env: dict[str, str]
    settings: Settings
    base_url: str
    log_path: Path
    # Its topics' prefix, consumer group, graph and the stem of its doc ids.
    name: str = ""
    process: subprocess.Popen[bytes] | None = None
    log_handle: object = field(default=None, repr=False)

    def start(self, timeout_s: float = 300.0) -> None:
        handle = self.log_path.open("ab")
        self.log_handle = handle
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", "worker"],
            cwd=REPO,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"worker exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.base_url}/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise RuntimeError(f"worker not ready after {timeout_s}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no last commit."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def run(self, argv: list[str], timeout_s: float) -> subprocess.CompletedProcess[bytes]:
        """Any command, in the worker's environment, stdout and stderr together."""
        return subprocess.run(
            argv,
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout_s,
        )

    def cli(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "ops.cli", *args],
            cwd=REPO,
            env=self.env,
            input=stdin,
            capture_output=True,
            timeout=120,
        )


@pytest.fixture(scope="module")
def pipeline(
    request: pytest.FixtureRequest,
    stack: Services,
    run_id: str,
    engine: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pipeline]:
    """The worker of one test module; a module's `PIPELINE_ENV` dict adds to or
    overrides its environment. It shares the run's topics and graph with the
    other modules of its engine, unless the module sets `OWN_TOPICS` (a word):
    then they are its own (`pipeline.name`), as a replay, which reads every
    document of its topic and switches the whole graph, needs."""
    workdir = tmp_path_factory.mktemp("pipeline")
    port = free_port()
    own = getattr(request.module, "OWN_TOPICS", None)
    name = f"{run_id}-{own}" if own else run_id
    # A QDRANT_URL of the session (the containers' server) is not the module's:
    # its Qdrant is the one `engine` names.
    env = {
        **{k: v for k, v in os.environ.items() if k != "QDRANT_URL"},
        "DOCSTREAM_TOPIC_PREFIX": f"{name}.",
        "DOCSTREAM_GROUP_ID": f"docstream-{name}",
        "NEO4J_GRAPH": name,
        **qdrant_env(request, engine, run_id, workdir / "qdrant"),
        "DOCSTREAM_API_PORT": str(port),
        "DOCSTREAM_CHUNK_MAX_TOKENS": "48",
        "DOCSTREAM_LOG_LEVEL": "INFO",
        "DOCSTREAM_API_KEYS": TEST_API_KEY,
        "DOCSTREAM_INTAKE_TIMEOUT_S": "5",
        # The tests poll status often from one address; the limit is unit-tested.
        "DOCSTREAM_RATE_LIMIT_PER_S": "500",
        **getattr(request.module, "PIPELINE_ENV", {}),
    }
    pipeline = Pipeline(
        env, Settings.from_env(env), f"http://127.0.0.1:{port}", workdir / "worker.log", name
    )
    pipeline.start()
    yield pipeline
    pipeline.stop()


@pytest.fixture(scope="session")
def neo4j_driver(stack: Services, base_settings: Settings, session_id: str) -> Iterator[Driver]:
    driver = GraphDatabase.driver(base_settings.neo4j.uri, auth=base_settings.neo4j.auth)
    yield driver
    # Leave the shared graph as we found it.
    driver.execute_query(
        "MATCH (n) WHERE n.doc_id STARTS WITH $prefix OR n.gen STARTS WITH $prefix + ':' "
        "OR n.name STARTS WITH $prefix DETACH DELETE n",
        prefix=session_id,  # both engines' passes (tests/integration `run_id`)
    )
    driver.close()


@pytest.fixture(scope="session")
def qdrant_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a Qdrant server of this session's own, for the server pass of
    the vector-store tests: started from QDRANT_BIN (or `qdrant` on PATH) as
    the local stack starts one (a QDRANT_BIN that is no executable fails its
    start), on a free port and a fresh folder, stopped at the end. Without a
    binary those tests are skipped, and the run's summary says how to provide
    one (tests/optional.py); CI requires it."""
    binary = qdrant_binary(os.environ)
    optional.need(optional.QDRANT_SERVER, binary is not None)
    with own_qdrant_server(tmp_path_factory.mktemp("qdrant-server"), binary) as server:
        yield server.url
