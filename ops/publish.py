"""Publish DocumentEvents to Kafka: Avro single-object encoding, key = doc_id,
headers `correlation_id`, `traceparent` and `schema` on every event.

The producer is idempotent with `acks=all`; every delivery report is checked,
and nothing is counted as sent until the broker acknowledged it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from core.correlation import CORRELATION_HEADER, SCHEMA_HEADER, TRACEPARENT_HEADER
from core.settings import KafkaSettings
from ops.sources import Item, Rejected
from schemas.codec import codec_for
from schemas.errors import EncodeError
from schemas.events import DocumentEvent


@dataclass
class PublishReport:
    sent: int = 0
    failed: list[Rejected] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        lines = [f"sent {self.sent}, failed {len(self.failed)}"]
        lines += [f"  failed: {r.source}: {r.reason}" for r in self.failed]
        return "\n".join(lines)


def producer_config(settings: KafkaSettings, delivery_timeout_s: float) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": 5,
        "message.timeout.ms": int(delivery_timeout_s * 1000),
        "log_level": 0,
    }


class DocumentPublisher:
    def __init__(
        self,
        settings: KafkaSettings,
        correlation_id: str,
        traceparent: str,
        delivery_timeout_s: float = 30.0,
    ) -> None:
        self.topic = settings.topics.documents
        self.codec = codec_for("DocumentEvent")
        self.headers = {
            CORRELATION_HEADER: correlation_id,
            TRACEPARENT_HEADER: traceparent,
            SCHEMA_HEADER: self.codec.fingerprint_hex,
        }
        self.delivery_timeout_s = delivery_timeout_s
        self._producer = Producer(producer_config(settings, delivery_timeout_s))
        self.report = PublishReport()

    def publish(self, items: Iterable[Item]) -> PublishReport:
        for item in items:
            if isinstance(item, Rejected):
                self.report.failed.append(item)
            else:
                self._produce(item)
        self._flush()
        return self.report

    def _produce(self, doc: DocumentEvent) -> None:
        try:
            value = self.codec.encode(doc.to_record())
        except EncodeError as exc:
            self.report.failed.append(Rejected(doc.source or doc.doc_id, str(exc)))
            return
        source = doc.source or doc.doc_id

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is None:
                self.report.sent += 1
            else:
                self.report.failed.append(Rejected(source, f"not delivered: {error.str()}"))

        while True:
            try:
                self._producer.produce(
                    self.topic,
                    key=doc.doc_id.encode(),
                    value=value,
                    headers=[(k, v.encode()) for k, v in self.headers.items()],
                    on_delivery=delivered,
                )
                break
            except BufferError:
                # The local queue is full: let deliveries drain, then retry.
                self._producer.poll(0.5)
        self._producer.poll(0)

    def _flush(self) -> None:
        # Deliveries time out after delivery_timeout_s, so this returns by then.
        remaining = self._producer.flush(self.delivery_timeout_s + 5)
        if remaining:
            self.report.failed.append(
                Rejected(self.topic, f"{remaining} events still unacknowledged at exit")
            )
