"""Correlation ids and trace context: minted once, carried in Kafka headers through
every derived event, and kept in a contextvar so every log line can name them."""

from __future__ import annotations

import contextvars
import secrets
import uuid
from collections.abc import Iterable, Mapping

CORRELATION_HEADER = "correlation_id"
TRACEPARENT_HEADER = "traceparent"
SCHEMA_HEADER = "schema"

current_correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "correlation_id", default=""
)


def mint_correlation_id() -> str:
    return uuid.uuid4().hex


def mint_traceparent() -> str:
    """A W3C traceparent for a new trace: version 00, random ids, sampled."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


HeaderList = list[tuple[str, bytes]]


def decode_headers(
    raw: Iterable[tuple[str, bytes | None]] | Mapping[str, bytes] | None,
) -> dict[str, str]:
    """Kafka headers (a list of pairs or a mapping) as text; undecodable values are dropped."""
    if raw is None:
        return {}
    pairs = raw.items() if isinstance(raw, Mapping) else raw
    out: dict[str, str] = {}
    for key, value in pairs:
        if value is None:
            continue
        try:
            out[key] = value.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return out


def encode_headers(headers: Mapping[str, str]) -> HeaderList:
    return [(key, value.encode("utf-8")) for key, value in headers.items() if value]


def event_headers(correlation_id: str, traceparent: str, schema_hex: str) -> HeaderList:
    """The headers a producer puts on every event it publishes."""
    return encode_headers(
        {
            CORRELATION_HEADER: correlation_id,
            TRACEPARENT_HEADER: traceparent,
            SCHEMA_HEADER: schema_hex,
        }
    )


def propagated(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers a derived event inherits from its parent."""
    keep = (CORRELATION_HEADER, TRACEPARENT_HEADER)
    return {key: headers[key] for key in keep if headers.get(key)}
