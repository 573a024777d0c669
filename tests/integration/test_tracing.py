"""Tracing on the real stack: the worker exports OTLP/HTTP to a receiver in this
process, and one document's trace runs intake → chunk → embed → both sinks,
each span the child of the one before it, across Kafka."""

from __future__ import annotations

import gzip
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.integration.conftest import TEST_API_KEY, Pipeline
from tests.integration.helpers import eventually, wait_for_doc
from tools.stack.ports import free_port

pytestmark = pytest.mark.integration
SERVICE = "service.name"
RECEIVER_PORT = free_port()  # the worker's env is built before any fixture of ours runs
PIPELINE_ENV = {
    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{RECEIVER_PORT}",
    "OTEL_BSP_SCHEDULE_DELAY": "200",
}


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    service: str
    attributes: dict[str, object]


@dataclass
class Receiver:
    """What an OTLP/HTTP collector got: every span of every export request."""

    spans: list[ReceivedSpan] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, request: ExportTraceServiceRequest) -> None:
        for resource in request.resource_spans:
            attributes = resource.resource.attributes
            service = next(
                (a.value.string_value for a in attributes if a.key == "service.name"), ""
            )
            spans = [_received(s, service) for scope in resource.scope_spans for s in scope.spans]
            with self.lock:
                self.spans.extend(spans)

    def of_trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]


def _received(span: object, service: str) -> ReceivedSpan:
    attributes = {a.key: _value(a.value) for a in span.attributes}  # type: ignore[attr-defined]
    return ReceivedSpan(
        name=span.name,  # type: ignore[attr-defined]
        kind=span.kind,  # type: ignore[attr-defined]
        trace_id=span.trace_id.hex(),  # type: ignore[attr-defined]
        span_id=span.span_id.hex(),  # type: ignore[attr-defined]
        parent_span_id=span.parent_span_id.hex(),  # type: ignore[attr-defined]
        service=service,
        attributes=attributes,
    )


def _value(value: object) -> object:
    kind = value.WhichOneof("value")  # type: ignore[attr-defined]
    return getattr(value, kind) if kind else None


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    received = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path == "/v1/traces":
                received.add(ExportTraceServiceRequest.FromString(body))
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200 if self.path == "/v1/traces" else 404)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_: object) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", RECEIVER_PORT), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received
    server.shutdown()
    server.server_close()


def test_one_documents_trace_runs_from_intake_through_both_sinks(
    receiver: Receiver, pipeline: Pipeline, run_id: str
) -> None:
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    doc_id = f"{run_id}-traced"
    text = "The quartermaster counted saffron barrels twice before the caravan left at dawn."
    response = httpx.post(
        f"{pipeline.base_url}/documents",
        json={"doc_id": doc_id, "text": text},
        headers={"X-API-Key": TEST_API_KEY, "traceparent": f"00-{trace_id}-{caller_span}-01"},
    )
    assert response.status_code == 202, response.text
    wait_for_doc(pipeline, doc_id, "quartermaster saffron barrels")

    wanted = {
        "POST /documents",
        "docstream.chunk",
        "docstream.embed",
        "docstream.qdrant-sink",
        "docstream.neo4j-sink",
    }

    def complete() -> list[ReceivedSpan] | None:
        spans = receiver.of_trace(trace_id)
        return spans if wanted <= {s.name for s in spans} else None

    spans = eventually(complete, f"spans {wanted} of trace {trace_id}", timeout_s=60)
    by_name: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    [intake] = by_name["POST /documents"]
    [chunk] = by_name["docstream.chunk"]
    assert intake.parent_span_id == caller_span
    assert chunk.parent_span_id == intake.span_id
    assert chunk.attributes["docstream.doc_id"] == doc_id
    assert chunk.attributes["docstream.correlation_id"] == response.json()["correlation_id"]
    assert chunk.attributes["messaging.destination.name"] == f"{run_id}.documents"
    embeds = {s.span_id for s in by_name["docstream.embed"]}
    assert {s.parent_span_id for s in by_name["docstream.embed"]} == {chunk.span_id}
    for sink in ("docstream.qdrant-sink", "docstream.neo4j-sink"):
        assert {s.parent_span_id for s in by_name[sink]} <= embeds, sink
        assert all(s.attributes["docstream.doc_id"] == doc_id for s in by_name[sink])
    assert {s.service for s in spans} == {"docstream-worker"}
    assert "tracing enabled" in pipeline.log_path.read_text(errors="replace")
