"""Publish DocumentEvents to Kafka: Avro (single-object, or the Confluent wire
format with a registry), key = doc_id, headers `correlation_id`, `traceparent`
and `schema` on every event.

The producer (`core/kafka/bulk.py`) is idempotent with `acks=all` and lz4
compression; every delivery report is checked, and nothing is counted as sent
until the broker acknowledged it."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TextIO

from core.correlation import event_headers
from core.kafka.bulk import BulkProducer, Delivery
from core.settings import KafkaSettings
from ops.publishing.sources import Item, Rejected, Skipped
from schemas.codec import AvroCodec
from schemas.errors import EncodeError
from schemas.events import DocumentEvent


@dataclass
class PublishReport:
    sent: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    failed: list[Rejected] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        lines = [f"sent {self.sent}, skipped {len(self.skipped)}, failed {len(self.failed)}"]
        lines += [f"  skipped: {s.source}: {s.reason}" for s in self.skipped]
        lines += [f"  failed: {r.source}: {r.reason}" for r in self.failed]
        return "\n".join(lines)


class Progress:
    """A one-line progress report with the rate, redrawn at most twice a second."""

    def __init__(self, stream: TextIO = sys.stderr, enabled: bool | None = None) -> None:
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.started = time.monotonic()
        self._drawn = 0.0

    def update(self, report: PublishReport, queued: int, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self._drawn < 0.5):
            return
        self._drawn = now
        rate = report.sent / max(now - self.started, 1e-6)
        failed = len(report.failed)
        line = f"\r  queued {queued}, sent {report.sent}, failed {failed}, {rate:,.0f} docs/s"
        self.stream.write(line + ("\n" if final else ""))
        self.stream.flush()


class DocumentPublisher:
    def __init__(
        self,
        settings: KafkaSettings,
        codec: AvroCodec,
        correlation_id: str,
        traceparent: str,
        delivery_timeout_s: float = 30.0,
    ) -> None:
        self.topic = settings.topics.documents
        self.codec = codec
        headers = event_headers(correlation_id, traceparent, codec.fingerprint_hex)
        self.headers: list[tuple[str, str | bytes | None]] = list(headers)
        self.delivery_timeout_s = delivery_timeout_s
        # Whole corpora: nobody waits on one event (the bulk linger).
        self._producer = BulkProducer(settings, delivery_timeout_s)
        self.report = PublishReport()
        self._queued = 0

    def publish(self, items: Iterable[Item], progress: Progress | None = None) -> PublishReport:
        progress = progress or Progress(enabled=False)
        for item in items:
            if isinstance(item, Rejected):
                self.report.failed.append(item)
            elif isinstance(item, Skipped):
                self.report.skipped.append(item)
            else:
                self._produce(item)
            progress.update(self.report, self._queued)
        self._flush()
        progress.update(self.report, self._queued, final=True)
        return self.report

    def _produce(self, doc: DocumentEvent) -> None:
        source = doc.source or doc.doc_id
        try:
            value = self.codec.encode(doc.to_record())
        except (EncodeError, ConnectionError) as exc:
            self.report.failed.append(Rejected(source, str(exc)))
            return

        def delivered(delivery: Delivery) -> None:
            if delivery.error is None:
                self.report.sent += 1
            else:
                self.report.failed.append(Rejected(source, f"not delivered: {delivery.error}"))

        # A full local queue is waited on inside `send`: deliveries drain, then it retries.
        self._producer.send(
            self.topic,
            value,
            key=doc.doc_id.encode(),
            headers=self.headers,
            on_delivery=delivered,
        )
        self._queued += 1

    def _flush(self) -> None:
        # Undelivered events time out after delivery_timeout_s, so this returns by then.
        remaining = self._producer.flush()
        if remaining:
            self.report.failed.append(
                Rejected(self.topic, f"{remaining} events still unacknowledged at exit")
            )
