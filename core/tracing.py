"""OpenTelemetry spans that continue the trace named by each event's `traceparent`.

Tracing is off unless an OTLP endpoint is configured: then nothing is installed,
every helper here returns at its first line, and headers pass through untouched.
When it is on, each stage's span is the child of the span that produced its
input, and the stage writes its own span into the `traceparent` of what it
produces, so one document's trace runs intake → chunk → embed → sinks.

Batches (the embedder and the sinks) hold messages of many traces. Rather than
one batch span that only *links* to them (the messaging convention, which leaves
each document's trace ending at the chunker in most trace viewers), a batch gets
one child span per distinct upstream context: every chunk of a document carries
the same parent (its chunk span), so this costs a span per document in the
batch, not per chunk, and each document's trace stays one unbroken tree. Each
span lasts the whole batch: that is the time the document spent there.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import ProxyTracerProvider, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from core.correlation import CORRELATION_HEADER, TRACEPARENT_HEADER, decode_headers
from core.logs import get_logger

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = get_logger(__name__)
SCOPE = "docstream"
_PROPAGATOR = TraceContextTextMapPropagator()
Attributes = Mapping[str, AttributeValue]


def traces_endpoint(env: Mapping[str, str]) -> str | None:
    """Where spans go, by the OTLP spec: the traces endpoint as given, or the base
    endpoint with `v1/traces` appended; None when neither is set."""
    if endpoint := env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip():
        return endpoint
    if base := env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
        parts = urlsplit(base)
        return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/v1/traces"))
    return None


def _safe(url: str) -> str:
    """The endpoint without user info or query string: what a log line may show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def configure_tracing(service_name: str, env: Mapping[str, str]) -> TracerProvider | None:
    """Install an SDK provider exporting over OTLP/HTTP in batches, only when an
    OTLP endpoint is set and `OTEL_SDK_DISABLED` is not true; returns it, or None.

    The SDK registers its own exit hook (`shutdown_on_exit`), which flushes the
    last batch when the process exits. Other OTEL_* knobs (headers, timeout,
    OTEL_BSP_*, sampler, resource attributes) are read by the SDK itself.
    """
    endpoint = traces_endpoint(env)
    if endpoint is None or env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    # Imported here: a process without tracing never loads the SDK.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = env.get("OTEL_SERVICE_NAME", "").strip() or service_name
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    log.info(
        "tracing enabled: spans exported over OTLP/HTTP",
        extra={"otlp_endpoint": _safe(endpoint), "service_name": name},
    )
    return provider


def _provider() -> trace.TracerProvider:
    """The installed provider; a seam the unit tests replace."""
    return trace.get_tracer_provider()


@lru_cache(maxsize=4)
def _tracer_of(provider: trace.TracerProvider) -> trace.Tracer:
    return provider.get_tracer(SCOPE)


def _tracer() -> trace.Tracer | None:
    """The tracer, or None while no provider is installed (tracing off)."""
    provider = _provider()
    if isinstance(provider, ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    return _tracer_of(provider)


def _parent(headers: Mapping[str, str]) -> Context:
    """The remote parent a `traceparent` header names (an empty context if none)."""
    return _PROPAGATOR.extract({TRACEPARENT_HEADER: headers.get(TRACEPARENT_HEADER, "")})


def consumer_attributes(
    stage: str, topic: str, key: bytes | None, correlation_id: str
) -> dict[str, AttributeValue]:
    """The attributes of a stage span: messaging conventions plus our ids."""
    return {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": topic,
        "docstream.stage": stage,
        "docstream.correlation_id": correlation_id,
        "docstream.doc_id": key.decode("utf-8", "replace") if key else "",
    }


@contextmanager
def span(
    name: str, headers: Mapping[str, str], attributes: Attributes, kind: SpanKind
) -> Iterator[Span]:
    """The current span for a block, child of the `traceparent` in `headers` (a
    new root without one); an exception is recorded and sets the error status."""
    tracer = _tracer()
    if tracer is None:
        yield trace.INVALID_SPAN
        return
    with tracer.start_as_current_span(
        name, context=_parent(headers), kind=kind, attributes=attributes
    ) as current:
        yield current


def stage_span(
    name: str, headers: Mapping[str, str], attributes: Attributes
) -> AbstractContextManager[Span]:
    """`span` for one consumed Kafka message (kind CONSUMER)."""
    return span(name, headers, attributes, SpanKind.CONSUMER)


def server_span(
    name: str, headers: Mapping[str, str], attributes: Attributes
) -> AbstractContextManager[Span]:
    """`span` for one HTTP request (kind SERVER)."""
    return span(name, headers, attributes, SpanKind.SERVER)


def current_traceparent(default: str) -> str:
    """The traceparent naming the current span, so what we publish is its child;
    `default` when no span is active (tracing off)."""
    return _traceparent_of(trace.get_current_span()) or default


def _traceparent_of(current: Span) -> str:
    """The W3C traceparent (version 00) naming `current`, '' for an invalid span.
    Formatted here rather than by the propagator, which builds a context per call
    (a batch asks once per message)."""
    context = current.get_span_context()
    if not context.is_valid:
        return ""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def with_current_trace(headers: Mapping[str, str]) -> dict[str, str]:
    """`headers` for an outgoing event, naming the current span as its parent."""
    given = headers.get(TRACEPARENT_HEADER, "")
    traceparent = current_traceparent(given)
    return {**headers, TRACEPARENT_HEADER: traceparent} if traceparent else dict(headers)


def http_status(current: Span, status_code: int) -> None:
    """Record an HTTP answer on a server span; a 5xx is an error (HTTP conventions)."""
    current.set_attribute("http.response.status_code", status_code)
    if status_code >= 500:
        current.set_status(Status(StatusCode.ERROR))


class Consumed(Protocol):
    """What a batch span needs of a consumed message (read-only)."""

    @property
    def topic(self) -> str: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def headers(self) -> Any: ...


@dataclass
class BatchSpans:
    """The spans of one batch: one per upstream `traceparent` it holds."""

    by_parent: dict[str, Span] = field(default_factory=dict)

    def continued(self, headers: Mapping[str, str]) -> dict[str, str]:
        """`headers` for the event derived from a message that carried them,
        naming that message's batch span as the parent."""
        found = self.by_parent.get(headers.get(TRACEPARENT_HEADER, ""))
        traceparent = _traceparent_of(found) if found is not None else ""
        return {**headers, TRACEPARENT_HEADER: traceparent} if traceparent else dict(headers)


def _grouped(messages: Sequence[Consumed]) -> dict[str, list[tuple[Consumed, dict[str, str]]]]:
    groups: dict[str, list[tuple[Consumed, dict[str, str]]]] = {}
    for message in messages:
        headers = decode_headers(message.headers)
        groups.setdefault(headers.get(TRACEPARENT_HEADER, ""), []).append((message, headers))
    return groups


def _batch_span(
    tracer: trace.Tracer,
    name: str,
    stage: str,
    members: list[tuple[Consumed, dict[str, str]]],
    batch_size: int,
) -> Span:
    first, headers = members[0]
    doc_ids = sorted({m.key.decode("utf-8", "replace") for m, _ in members if m.key})
    attributes = consumer_attributes(stage, first.topic, None, headers.get(CORRELATION_HEADER, ""))
    attributes["docstream.doc_id"] = doc_ids[0] if len(doc_ids) == 1 else doc_ids
    attributes["messaging.batch.message_count"] = len(members)
    attributes["docstream.batch_size"] = batch_size
    return tracer.start_span(
        name, context=_parent(headers), kind=SpanKind.CONSUMER, attributes=attributes
    )


@contextmanager
def batch_spans(name: str, stage: str, messages: Sequence[Consumed]) -> Iterator[BatchSpans]:
    """Spans for a batch: one child span per distinct upstream context (see the
    module docstring for why), ended together when the block ends; an exception
    is recorded on each."""
    tracer = _tracer()
    if tracer is None or not messages:
        yield BatchSpans()
        return
    spans = BatchSpans(
        {
            parent: _batch_span(tracer, name, stage, members, len(messages))
            for parent, members in _grouped(messages).items()
        }
    )
    try:
        yield spans
    except Exception as exc:
        for each in spans.by_parent.values():
            each.record_exception(exc)
            each.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        for each in spans.by_parent.values():
            each.end()
