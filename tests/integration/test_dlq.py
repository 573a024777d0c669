"""Dead letters on the real stack: `docstream dlq` and `docstream status` against a
real worker, Kafka, Neo4j and Qdrant (embedded, then a server).

The scenario is a configuration fault fixed by the operator. A producer that
already writes the Confluent wire format (with a schema registry) sends a
document to a worker that has no registry configured: the worker cannot know
the writer's schema and dead-letters it (UnknownSchema). Beside it goes an event
that is not Avro at all and never will be. The operator restarts the worker with
the registry and redrives: the same original bytes now decode and the document
is indexed, while the broken event fails again, comes back with its redrive
count, and is refused once the count reaches the limit.

The registry is a small in-process fake of the Confluent REST API (register a
schema, fetch one by id): all that the codecs ask of a registry."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from neo4j import Driver

from core.correlation import CORRELATION_HEADER, TRACEPARENT_HEADER
from core.kafka.config import client_config
from core.settings import Settings
from schemas.codec import AvroCodec
from schemas.confluent import ConfluentRegistry
from schemas.events import DocumentEvent, now_millis
from tests.integration.conftest import TEST_API_KEY, Pipeline, qdrant_env
from tests.integration.helpers import eventually, read_all
from tools.stack.local import LocalStack
from tools.stack.ports import free_port

pytestmark = pytest.mark.integration
ENGINES = ("edge", "server")  # once on Qdrant Edge, once on a server (conftest)
MAX_REDRIVES = "2"


class _RegistryHandler(BaseHTTPRequestHandler):
    server: FakeRegistry

    def do_POST(self) -> None:  # register a schema under a subject: its id
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            ids = self.server.ids
            schema_id = ids.setdefault(body["schema"], len(ids) + 1)
        self._answer(200, {"id": schema_id})

    def do_GET(self) -> None:  # a schema by id
        match = re.fullmatch(r"/schemas/ids/(\d+)", self.path.split("?")[0])
        by_id = {i: s for s, i in self.server.ids.items()}
        if match and int(match.group(1)) in by_id:
            self._answer(200, {"schema": by_id[int(match.group(1))]})
        else:
            self._answer(404, {"error_code": 40403, "message": "Schema not found"})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


class FakeRegistry(ThreadingHTTPServer):
    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _RegistryHandler)
        self.ids: dict[str, int] = {}
        self.lock = threading.Lock()


@pytest.fixture(scope="module")
def registry_url() -> Iterator[str]:
    server = FakeRegistry(free_port())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def base_env(
    request: pytest.FixtureRequest,
    stack: LocalStack,
    run_id: str,
    engine: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    workdir = tmp_path_factory.mktemp("dlq")
    env = {
        **{k: v for k, v in os.environ.items() if k != "QDRANT_URL"},
        "DOCSTREAM_TOPIC_PREFIX": f"{run_id}-dlq.",
        "DOCSTREAM_GROUP_ID": f"docstream-{run_id}-dlq",
        **qdrant_env(request, engine, run_id, workdir / "qdrant"),
        "DOCSTREAM_API_PORT": str(free_port()),
        "DOCSTREAM_LOG_LEVEL": "INFO",
        "DOCSTREAM_API_KEYS": TEST_API_KEY,
        "DOCSTREAM_RATE_LIMIT_PER_S": "500",
    }
    env.pop("SCHEMA_REGISTRY_URL", None)
    return env


def worker(env: dict[str, str], log_path: Path) -> Pipeline:
    settings = Settings.from_env(env)
    return Pipeline(env, settings, f"http://127.0.0.1:{settings.api.port}", log_path)


def cli_json(pipeline: Pipeline, *args: str, rc: int | None = 0) -> dict[str, Any]:
    done = pipeline.cli(*args)
    if rc is not None:
        assert done.returncode == rc, (args, done.returncode, done.stderr.decode()[-3000:])
    return dict(json.loads(done.stdout))


def dead_letters(pipeline: Pipeline) -> list[dict[str, Any]]:
    return list(cli_json(pipeline, "dlq", "list", "--json", "--limit", "0")["dead_letters"])


def doc_status(pipeline: Pipeline, doc_id: str) -> str | None:
    response = httpx.get(f"{pipeline.base_url}/documents/{doc_id}")
    return str(response.json()["status"]) if response.status_code == 200 else None


@pytest.fixture(scope="module")
def scenario(
    base_env: dict[str, str],
    registry_url: str,
    run_id: str,
    neo4j_driver: Driver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """Two events dead-lettered by a worker without the registry, then that worker
    replaced by one with it; yields the second worker and what was sent."""
    log_path = tmp_path_factory.mktemp("dlq-logs") / "worker.log"
    first = worker(base_env, log_path)
    first.start()
    good, broken = f"{run_id}-dlq-good", f"{run_id}-dlq-broken"
    try:
        send(first.settings, registry_url, good, broken, run_id)

        def both() -> list[dict[str, Any]] | None:
            found = dead_letters(first)
            return found if len(found) == 2 else None

        letters = eventually(both, "both events dead-lettered by the worker without a registry")
        # Stop only once the chunker's group has committed past both events, so
        # the next worker does not simply read them again.
        eventually(lambda: chunker_lag(first) == 0, "the chunker committed")
    finally:
        first.stop()
    second = worker({**base_env, "SCHEMA_REGISTRY_URL": registry_url}, log_path)
    second.start()
    try:
        yield {"worker": second, "good": good, "broken": broken, "letters": letters}
    finally:
        second.stop()


def chunker_lag(pipeline: Pipeline) -> int:
    report = cli_json(pipeline, "status", "--json", rc=None)  # no store answer needed here
    return int(report["kafka"]["groups"]["chunker"]["lag"])


def send(settings: Settings, registry_url: str, good: str, broken: str, run_id: str) -> None:
    codec = AvroCodec("DocumentEvent", confluent_registry=ConfluentRegistry.connect(registry_url))
    doc = DocumentEvent(
        doc_id=good,
        version=1,
        occurred_at=now_millis(),
        text="Quokkas on Rottnest Island smile for every visitor's camera.",
    )
    producer = Producer(client_config(settings.kafka))
    for doc_id, value in ((good, codec.encode(doc.to_record())), (broken, b"not avro at all")):
        producer.produce(
            settings.kafka.topics.documents,
            key=doc_id.encode(),
            value=value,
            headers=[
                (CORRELATION_HEADER, f"corr-{doc_id}".encode()),
                (TRACEPARENT_HEADER, f"00-{run_id:0>32}-{'1' * 16}-01".encode()),
            ],
        )
    assert producer.flush(15) == 0


def mine(letters: list[dict[str, Any]], doc_id: str) -> list[dict[str, Any]]:
    return [d for d in letters if d["correlation_id"] == f"corr-{doc_id}"]


def redriven_events(pipeline: Pipeline) -> list[dict[str, str]]:
    """Every event on the documents topic that a redrive put there, by its headers."""
    messages = read_all(pipeline.settings.kafka, pipeline.settings.kafka.topics.documents)
    headers = [{k: v.decode() for k, v in (m.headers() or [])} for m in messages]
    return [h for h in headers if "dlq_redrive_of" in h]


def redrive(pipeline: Pipeline, rc: int = 0) -> dict[str, Any]:
    return cli_json(pipeline, "dlq", "redrive", "--all", "--max-redrives", MAX_REDRIVES, rc=rc)


def test_the_dead_letters_are_listed_grouped_and_shown_with_their_payload(
    scenario: dict[str, Any],
) -> None:
    pipeline, good, broken = scenario["worker"], scenario["good"], scenario["broken"]
    [letter] = mine(scenario["letters"], good)
    assert letter["stage"] == "chunker" and letter["reason"].startswith("UnknownSchema")
    assert "no schema registry is configured" in letter["reason"]
    groups = cli_json(pipeline, "dlq", "list", "--json")["groups"]
    assert sorted(len(g["refs"]) for g in groups) == [1, 1]
    only = cli_json(pipeline, "dlq", "list", "--json", "--reason-contains", "c301")
    assert [d["key"] for d in only["dead_letters"]] == [broken], "BadMarker names c301"

    shown = cli_json(pipeline, "dlq", "show", letter["ref"], "--json")
    assert shown["payload"]["decoded"]["doc_id"] == good, "decoded now that a registry is set"
    assert shown["headers"][CORRELATION_HEADER] == f"corr-{good}"
    assert shown["dlq_headers"]["dlq_stage"] == "chunker"
    [poison] = mine(scenario["letters"], broken)
    raw = cli_json(pipeline, "dlq", "show", f"{poison['partition']}:{poison['offset']}", "--json")
    assert raw["payload"]["decoded"] is None and raw["payload"]["utf8"] == "not avro at all"
    text = pipeline.cli("dlq", "list")
    assert text.returncode == 0 and letter["ref"] in text.stdout.decode()


def test_redrive_indexes_the_fixed_one_and_refuses_the_broken_one_at_the_limit(
    scenario: dict[str, Any],
) -> None:
    pipeline, good, broken = scenario["worker"], scenario["good"], scenario["broken"]
    assert doc_status(pipeline, good) == "dead_lettered", "the new worker did not reread it"

    dry = cli_json(pipeline, "dlq", "redrive", "--all", "--dry-run")
    assert (dry["would_redrive"], dry["redriven"]) == (2, 0)
    assert redriven_events(pipeline) == []

    first = pipeline.cli("dlq", "redrive", "--all", "--max-redrives", MAX_REDRIVES)
    assert first.returncode == 0, first.stderr.decode()[-3000:]
    assert json.loads(first.stdout)["redriven"] == 2
    logged = [json.loads(line) for line in first.stderr.decode().splitlines() if line[:1] == "{"]
    assert {line["correlation_id"] for line in logged if line["msg"] == "dead letter redriven"} == {
        f"corr-{good}",
        f"corr-{broken}",
    }
    eventually(lambda: doc_status(pipeline, good) == "indexed", f"{good} indexed", 180)

    def failed_again(count: int) -> bool:
        return any(d["redrives"] == count for d in mine(dead_letters(pipeline), broken))

    eventually(lambda: failed_again(1), "the broken event dead-lettered again, count 1")
    second = redrive(pipeline)
    assert (second["redriven"], second["skipped"]) == (1, 2), "each dead letter once, ever"
    eventually(lambda: failed_again(2), "the broken event dead-lettered again, count 2")

    for _ in range(2):  # at the limit: refused, however often asked
        refused = redrive(pipeline, rc=1)
        assert (refused["redriven"], refused["refused"]) == (0, 1)
        [row] = [s for s in refused["steps"] if s["action"] == "refused"]
        assert row["why"] == f"redriven 2 times already (limit {MAX_REDRIVES})"

    events = redriven_events(pipeline)
    assert sorted((e[CORRELATION_HEADER], e["dlq_redrives"]) for e in events) == [
        (f"corr-{broken}", "1"),
        (f"corr-{broken}", "2"),
        (f"corr-{good}", "1"),
    ]
    assert all(e[TRACEPARENT_HEADER].startswith("00-") for e in events)
    assert doc_status(pipeline, good) == "indexed"


def test_status_and_admin_status_report_the_pipeline(scenario: dict[str, Any]) -> None:
    pipeline = scenario["worker"]
    topics = pipeline.settings.kafka.topics
    assert httpx.get(f"{pipeline.base_url}/admin/status").status_code == 401
    response = httpx.get(
        f"{pipeline.base_url}/admin/status", headers={"X-API-Key": TEST_API_KEY}, timeout=30
    )
    assert response.status_code == 200
    admin = response.json()
    assert set(admin["kafka"]["groups"]) == {"chunker", "embedder", "qdrant-sink", "neo4j-sink"}
    assert admin["qdrant"]["chunks"] >= 1 and admin["neo4j"]["chunks"] >= 1
    assert admin["neo4j"]["active"].startswith(pipeline.settings.neo4j.graph + ":")
    assert admin["pipeline"]["breakers"] == {"qdrant-sink": "closed", "neo4j-sink": "closed"}

    report = cli_json(pipeline, "status", "--json")
    kafka = report["kafka"]
    assert kafka["topics"][topics.documents]["partitions"] == pipeline.settings.kafka.partitions
    assert kafka["topics"][f"{topics.documents}.dlq"]["records"] == 4
    assert f"{topics.documents}.dlq.redriven" in kafka["topics"]
    assert kafka["groups"]["chunker"]["group"] == pipeline.settings.kafka.group_id
    assert report["pipeline"]["freshness_s"]["qdrant-sink"]["count"] >= 1
    assert report["qdrant"]["chunks"] == admin["qdrant"]["chunks"], "asked of the worker"
    text = pipeline.cli("status")
    assert text.returncode == 0 and "lag embedder" in text.stdout.decode()


def test_purge_needs_yes_and_then_empties_the_dead_letter_topics(
    scenario: dict[str, Any],
) -> None:
    pipeline = scenario["worker"]
    dlq = f"{pipeline.settings.kafka.topics.documents}.dlq"
    asked = cli_json(pipeline, "dlq", "purge", rc=2)
    assert asked["would_delete"][dlq] == 4
    assert len(dead_letters(pipeline)) == 4
    purged = cli_json(pipeline, "dlq", "purge", "--yes")
    assert purged["deleted"][dlq] == 4
    assert dead_letters(pipeline) == []
    again = pipeline.cli("dlq", "purge", "--yes")
    assert again.returncode == 0
