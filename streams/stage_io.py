"""What every stage shares when it reads a consumed event and writes derived
ones: which errors make a dead letter, the headers in and out, and the rule
that an UPSERT must be indexable."""

from __future__ import annotations

from core.correlation import SCHEMA_HEADER, decode_headers, encode_headers, propagated
from schemas.errors import CodecError
from schemas.events import DocumentEvent, InvalidEvent
from streams.deadletter import RawMessage

# What makes an event a dead letter: bytes that cannot be decoded (an unknown
# schema included) and records that break a rule. Anything else raised while a
# stage maps its events is a bug in docstream: it fails loudly, and the event
# stays unconsumed.
DATA_ERRORS = (CodecError, InvalidEvent)


def headers_of(message: RawMessage) -> dict[str, str]:
    return decode_headers(message.headers)


def derived_headers(parent: dict[str, str], schema_hex: str) -> list[tuple[str, bytes]]:
    return encode_headers({**propagated(parent), SCHEMA_HEADER: schema_hex})


def check_indexable(doc: DocumentEvent, max_text_bytes: int) -> None:
    """Raise InvalidEvent for an UPSERT that can never be indexed: empty text,
    or text over the limit (one document must not become thousands of chunks)."""
    if doc.op != "UPSERT":
        return
    if not doc.text.strip():
        raise InvalidEvent("text is empty: nothing to index")
    if len(doc.text) > max_text_bytes // 4:  # cheap first: 4 bytes a char at most
        size = len(doc.text.encode("utf-8"))
        if size > max_text_bytes:
            raise InvalidEvent(
                f"text is {size} bytes; the limit is {max_text_bytes} "
                "(DOCSTREAM_MAX_TEXT_BYTES): split the document"
            )
