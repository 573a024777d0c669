"""JSON log lines: correlation ids in, e-mail addresses and credentials out."""

from __future__ import annotations

import json
import logging

from core.correlation import current_correlation_id
from core.logs import JsonFormatter, scrub


def line(msg: str, **extra: object) -> dict[str, object]:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, msg, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return dict(json.loads(JsonFormatter().format(record)))


def test_a_line_is_json_with_the_correlation_id_of_the_work_in_hand() -> None:
    token = current_correlation_id.set("corr-9")
    try:
        out = line("indexed", doc_id="d1")
    finally:
        current_correlation_id.reset(token)
    assert out["msg"] == "indexed" and out["doc_id"] == "d1" and out["correlation_id"] == "corr-9"


def test_email_addresses_and_credentials_never_reach_a_line() -> None:
    out = json.dumps(
        line(
            "query from ada.lovelace+x@example.co.uk",
            headers="Authorization: Bearer abc.DEF-123",
            url="bolt://neo4j:s3cret@db:7687",
            error="api_key=sk-live-42 and password: hunter2, X-API-Key: k-77",
        )
    )
    for secret in ("ada.lovelace", "abc.DEF-123", "s3cret", "sk-live-42", "hunter2", "k-77"):
        assert secret not in out, secret
    assert "[email]" in out and out.count("[redacted]") == 5


def test_ordinary_text_is_left_alone() -> None:
    text = "chunk 3 of doc-7 indexed in 12 ms (tokens=200, key=doc_id)"
    assert scrub(text) == text


def test_a_line_inside_a_span_carries_its_trace_and_span_ids() -> None:
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    context = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1))
    with trace.use_span(NonRecordingSpan(context)):
        inside = line("in a stage")
    assert inside["trace_id"] == f"{0xABC:032x}" and inside["span_id"] == f"{0xDEF:016x}"
    assert "trace_id" not in line("outside")


def test_a_library_repeating_itself_is_held_back_and_counted() -> None:
    from core.logs import RepeatFilter

    repeats = RepeatFilter(window_s=10.0)

    def at(t: float, name: str = "aiokafka.conn", msg: str = "Unable connect to %s") -> bool:
        record = logging.LogRecord(name, logging.ERROR, __file__, 1, msg, ("node",), None)
        record.created = t
        shown = repeats.filter(record)
        at.last = record  # type: ignore[attr-defined]
        return shown

    assert at(100.0) and not at(101.0) and not at(105.0)
    assert at(100.5, msg="another message"), "each message has its own window"
    assert at(100.5, name="docstream.stages"), "our own lines are never held back"
    assert at(111.0) and at.last.repeated == 2  # type: ignore[attr-defined]
