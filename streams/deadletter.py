"""Dead letters: an event a stage can never process goes to `<input topic>.dlq`
with its original bytes, its headers and the reason, and the stream goes on."""

from __future__ import annotations

from typing import Any, Protocol

from core.correlation import (
    CORRELATION_HEADER,
    SCHEMA_HEADER,
    decode_headers,
    encode_headers,
    propagated,
)
from core.logs import get_logger
from core.metrics import EVENTS
from core.settings import Topics
from core.types import Producer
from schemas.codec import AvroCodec
from schemas.events import now_millis
from streams.registry_wait import with_registry

log = get_logger(__name__)

REASON_HEADER = "dlq_reason"
STAGE_HEADER = "dlq_stage"


class RawMessage(Protocol):
    """What we need of a consumed Kafka message (faust's Message and the batch
    stages' `core.kafka.records.Record` have all of it), read-only."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def headers(self) -> Any: ...


class DeadLetterSink(Protocol):
    """Where a stage sends an event it can never process."""

    async def send(self, stage: str, message: RawMessage, error: BaseException) -> None: ...


# Beyond this a dead letter could not be produced at all (streams/app.py sets
# the producer's limit above it): keep the head of the original, and say so.
# The whole event stays on its source topic, at the offset the letter names.
MAX_ORIGINAL_BYTES = 48 * 1024 * 1024


def dead_letter_record(stage: str, message: RawMessage, error: BaseException) -> dict[str, Any]:
    raw_headers = message.headers or []
    pairs = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
    headers = {key: value for key, value in pairs if value is not None}
    value = message.value
    note = ""
    if value is not None and len(value) > MAX_ORIGINAL_BYTES:
        note = (
            f" [value cut from {len(value)} to {MAX_ORIGINAL_BYTES} bytes; the whole event is "
            f"at {message.topic}:{message.partition}:{message.offset}]"
        )
        value = value[:MAX_ORIGINAL_BYTES]
    return {
        "stage": stage,
        "error_class": type(error).__name__,
        "error_message": str(error)[:2000] + note,
        "topic": message.topic,
        "partition": int(message.partition),
        "offset": int(message.offset),
        "key": message.key,
        "value": value,
        "headers": headers,
        "correlation_id": decode_headers(headers).get(CORRELATION_HEADER, ""),
        "failed_at": now_millis(),
    }


class DeadLetters:
    def __init__(self, producer: Producer, codec: AvroCodec) -> None:
        self.producer = producer
        self.codec = codec

    async def send(self, stage: str, message: RawMessage, error: BaseException) -> None:
        record = dead_letter_record(stage, message, error)
        reason = f"{record['error_class']}: {record['error_message']}"[:500]
        # The dead letter continues the original trace; its own schema is DeadLetter.
        inherited = propagated(decode_headers(record["headers"]))
        headers = encode_headers(
            {
                **inherited,
                CORRELATION_HEADER: record["correlation_id"],
                SCHEMA_HEADER: self.codec.fingerprint_hex,
                STAGE_HEADER: stage,
                REASON_HEADER: reason,
            }
        )
        topic = Topics.dead_letter(message.topic)
        value = await with_registry(stage, lambda: self.codec.encode(record))
        await self.producer.send(topic, message.key, value, headers)
        EVENTS.labels(stage, "dead_lettered").inc()
        log.warning(
            "event dead-lettered",
            extra={
                "stage": stage,
                "dlq_topic": topic,
                "reason": record["error_message"][:200],
                "error_class": record["error_class"],
                "offset": record["offset"],
                "correlation_id": record["correlation_id"],
            },
        )
