"""The whole pipeline over secured connections, on real services.

A secured local stack of the module's own (`tools.stack`, secure profile, on
free ports): Kafka behind a SASL_SSL listener (SCRAM-SHA-512), Neo4j with Bolt
TLS required and a password, and, where a Qdrant server binary is given
(QDRANT_BIN; CI gives it), Qdrant over https with an API key, all from a
throwaway CA the stack makes under the test's folder. A worker and the CLI
reach it with the settings of its `secure.env` alone (secrets by file).

Over it: the README's Operations block as written (status, publish, rebuild,
rebuild from a time, replay, dead letters listed, shown and redriven), a query
and a follower that sees a new document. Then the failures an operator meets,
each of which must end a start within seconds naming the setting to fix (not
a hang, not a traceback): a wrong Kafka password, a CA that did not sign the
broker's certificate, a plaintext client on the SASL_SSL listener, a wrong
Neo4j password, an untrusted Neo4j certificate, a wrong Qdrant API key.
Last, no secret of the run appears in any log line, CLI output, /health or
`docstream status`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.settings import Settings
from tests.integration.conftest import REPO, TEST_API_KEY, Pipeline
from tests.integration.follow_client import Follow
from tests.integration.helpers import eventually
from tests.integration.test_runbook import DOCSTREAM, REQUIRED, kind, operations_block
from tools.admin_key import stack_key_path
from tools.stack.certs import make_certificates
from tools.stack.local import LocalStack, qdrant_binary
from tools.stack.ports import free_port

# The stack's two JVMs and a worker start here, beside the session's own.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]
OWN = f"secured{uuid.uuid4().hex[:8]}"
# A refused start that has not ended by then hangs instead (the checks take
# seconds; how long is not what this test checks).
HANG_S = 120
# Whatever the session set for its plaintext services stays out of this module.
FOREIGN = ("KAFKA_", "NEO4J_", "QDRANT_", "DOCSTREAM_")


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The secured stack's client settings (its secure.env), while it runs."""
    root = tmp_path_factory.mktemp("secured-stack")
    kafka, controller, neo4j = free_port(), free_port(), free_port()
    env = {
        "DOCSTREAM_STACK_DIR": str(root),
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka}",
        "KAFKA_CONTROLLER_PORT": str(controller),
        "NEO4J_URI": f"bolt://127.0.0.1:{neo4j}",
    }
    binary = qdrant_binary(os.environ)
    if binary is not None:
        env |= {"QDRANT_URL": f"http://127.0.0.1:{free_port()}", "QDRANT_BIN": str(binary)}
    stack = LocalStack(Settings.from_env(env), controller_port=controller, env=env, secure=True)
    stack.up(log=True)
    try:
        yield stack.client_env()
    finally:
        stack.down()


@pytest.fixture(scope="module")
def worker_env(secured: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    work = tmp_path_factory.mktemp("secured-worker")
    base = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN)}
    env = {
        **base,
        **secured,
        "DOCSTREAM_TOPIC_PREFIX": f"{OWN}.",
        "DOCSTREAM_GROUP_ID": f"docstream-{OWN}",
        "NEO4J_GRAPH": OWN,
        "DOCSTREAM_API_PORT": str(free_port()),
        "DOCSTREAM_CHUNK_MAX_TOKENS": "48",
        "DOCSTREAM_LOG_LEVEL": "INFO",
        "DOCSTREAM_API_KEYS": TEST_API_KEY,
        "DOCSTREAM_RATE_LIMIT_PER_S": "500",
        "DOCSTREAM_SSE_HEARTBEAT_S": "1",
        "DOCSTREAM_STACK_DIR": str(work / "stack"),
        "DOCSTREAM_MODEL_CACHE": os.environ.get(
            "DOCSTREAM_MODEL_CACHE", str(REPO / ".stack" / "models")
        ),
    }
    if "QDRANT_URL" not in secured:  # no server binary: the embedded engine, no TLS to test
        env["QDRANT_PATH"] = str(work / "qdrant")
    return env


@pytest.fixture(scope="module")
def pipeline(
    worker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    log = tmp_path_factory.mktemp("secured-log") / "worker.log"
    port = worker_env["DOCSTREAM_API_PORT"]
    running = Pipeline(worker_env, Settings.from_env(worker_env), f"http://127.0.0.1:{port}", log)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def outputs() -> list[str]:
    """Everything the run printed, for the last test to search for secrets."""
    return []


@pytest.fixture(scope="module")
def cli_env(worker_env: dict[str, str]) -> dict[str, str]:
    """The CLI as an operator runs it: no key in its environment (the stack's
    key file has it), the secured services' settings from secure.env."""
    key = stack_key_path(Path(worker_env["DOCSTREAM_STACK_DIR"]))
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_text(TEST_API_KEY + "\n")
    key.chmod(0o600)
    return {k: v for k, v in worker_env.items() if k != "DOCSTREAM_API_KEYS"}


def cli(
    env: dict[str, str],
    outputs: list[str],
    *args: str,
    stdin: bytes | None = None,
    timeout_s: float = 300,
) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "ops.cli", *args],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        timeout=timeout_s,
    )
    out, err = done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    outputs += [out, err]
    return done.returncode, out, err


def test_the_readme_operations_block_runs_over_secured_connections(
    pipeline: Pipeline, cli_env: dict[str, str], outputs: list[str]
) -> None:
    doc_id = f"{OWN}-blank"  # the chunker dead-letters it: dlq show and redrive need one
    line = json.dumps({"doc_id": doc_id, "text": "   "}).encode() + b"\n"
    code, out, err = cli(cli_env, outputs, "publish", "-", stdin=line)
    assert code == 0, out + err

    def letter() -> str | None:
        code, out, err = cli(cli_env, outputs, "dlq", "list", "--json", "--limit", "0")
        assert code == 0, out + err
        found = json.loads(out)["dead_letters"]
        return next((d["ref"] for d in found if d["key"] == doc_id), None)

    ref = eventually(letter, "the blank document dead-lettered by the chunker")
    lines = operations_block((REPO / "README.md").read_text())
    for argv in lines:
        assert argv[0] == DOCSTREAM, argv
        what = kind(argv)
        args = [ref if a == "REF" else a for a in argv[1:]]
        code, out, err = cli(cli_env, outputs, *args)
        assert code == 0, f"{args} exited {code}:\n{out[-2000:]}\n{err[-2000:]}"
        assert re.search(REQUIRED[what], out, re.M), f"{args}: no {REQUIRED[what]!r} in\n{out}"


def test_a_query_and_a_follower_over_secured_connections(pipeline: Pipeline) -> None:
    follower = Follow(
        pipeline.base_url, {"q": "velvetquokka", "mode": "lexical", "k": 3, "expand": 0}
    ).start()
    try:
        assert follower.status == 200
        follower.wait_for("done", lambda e: e.kind == "done", 60)
        doc = {"doc_id": f"{OWN}-quokka", "text": "The velvetquokka hums over TLS."}
        answer = httpx.post(
            f"{pipeline.base_url}/documents",
            json=[doc],
            headers={"X-API-Key": TEST_API_KEY},
            timeout=30,
        )
        assert answer.status_code == 202, answer.text
        follower.wait_for(
            "the new document", lambda e: e.kind == "hit" and e.data["doc_id"] == doc["doc_id"], 120
        )
    finally:
        follower.stop()
    with httpx.Client(base_url=pipeline.base_url, timeout=30) as client:
        found = client.post("/query", json={"q": "velvetquokka", "k": 3}).json()
    assert [h["doc_id"] for h in found["hits"]][:1] == [f"{OWN}-quokka"], found
    assert not found.get("degraded"), found


def _without(env: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in names}


def _misconfigured(cli_env: dict[str, str], tmp: Path) -> dict[str, tuple[dict[str, str], str]]:
    """Each operator's mistake: the worker's settings with it, and the setting
    the refusal must name."""
    wrong = tmp / "wrong-password"
    wrong.write_text("not-the-password\n")
    stranger = make_certificates(tmp / "another-ca").ca  # a CA that signed nothing here
    cases = {
        "kafka password": (
            {**cli_env, "KAFKA_SASL_PASSWORD_FILE": str(wrong)},
            "KAFKA_SASL_PASSWORD",
        ),
        "kafka certificate": ({**cli_env, "KAFKA_SSL_CA_FILE": str(stranger)}, "KAFKA_SSL_CA_FILE"),
        "kafka plaintext": (
            {
                **_without(cli_env, "KAFKA_SASL_PASSWORD_FILE", "KAFKA_SSL_CA_FILE"),
                "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
            },
            "KAFKA_SECURITY_PROTOCOL",
        ),
        "neo4j password": ({**cli_env, "NEO4J_PASSWORD_FILE": str(wrong)}, "NEO4J_PASSWORD"),
        "neo4j certificate": ({**cli_env, "NEO4J_CA_FILE": str(stranger)}, "NEO4J_CA_FILE"),
    }
    if cli_env.get("QDRANT_URL", "").startswith("https://"):
        cases["qdrant api key"] = (
            {**cli_env, "QDRANT_API_KEY_FILE": str(wrong)},
            "QDRANT_API_KEY",
        )
        cases["qdrant certificate"] = (
            {**cli_env, "QDRANT_CA_FILE": str(stranger)},
            "QDRANT_CA_FILE",
        )
    return cases


def test_each_wrong_setting_ends_the_start_at_once_naming_the_setting(
    pipeline: Pipeline, cli_env: dict[str, str], outputs: list[str], tmp_path: Path
) -> None:
    # The module's worker runs on: a second one would start beside it, so
    # each one here is refused before it opens anything, or the test fails.
    env_port = {"DOCSTREAM_API_PORT": str(free_port())}
    for name, (env, setting) in _misconfigured(cli_env, tmp_path).items():
        try:
            code, out, err = cli(
                {**env, **env_port}, outputs, "worker", "--no-api", timeout_s=HANG_S
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name}: the start hung instead of refusing")
        said = out + err
        assert code == 2, f"{name}: exit {code}\n{said[-3000:]}"
        assert setting in err, f"{name}: the refusal names no {setting}:\n{err}"
        assert "Traceback" not in said, f"{name}:\n{said[-3000:]}"
    code, out, err = cli(
        _misconfigured(cli_env, tmp_path)["kafka password"][0],
        outputs,
        "publish",
        "-",
        stdin=b'{"doc_id": "never", "text": "never sent"}\n',
    )
    assert code == 2 and "KAFKA_SASL_PASSWORD" in err, out + err


def _secrets(env: dict[str, str]) -> list[str]:
    files = [v for k, v in env.items() if k.endswith("_FILE") and Path(v).is_file()]
    values = [Path(f).read_text().strip() for f in files]
    return [v for v in [*values, TEST_API_KEY] if len(v) >= 8]


def test_no_secret_in_any_log_line_or_status_output(
    pipeline: Pipeline, cli_env: dict[str, str], outputs: list[str]
) -> None:
    code, out, err = cli(cli_env, outputs, "status")
    assert code == 0, out + err
    assert "SASL_SSL" in out, f"status says how Kafka is reached:\n{out}"
    code, out, err = cli(cli_env, outputs, "status", "--json")
    assert code == 0, out + err
    health = httpx.get(f"{pipeline.base_url}/health", timeout=10).text
    seen = "\n".join([*outputs, health, pipeline.log_path.read_text(errors="replace")])
    secrets = _secrets(cli_env)
    assert len(secrets) >= 3, "the Kafka, Neo4j (and Qdrant) secrets and the API key"
    leaked = [s[:3] + "…" for s in secrets if s in seen]
    assert not leaked, f"secrets in the run's output: {leaked}"
