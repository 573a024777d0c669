"""The sample corpus that `make run` publishes before its workers start."""

from __future__ import annotations

from pathlib import Path

from core.correlation import mint_correlation_id, mint_traceparent
from core.kafka.admin import ensure_topics
from core.settings import Settings
from ops.publishing.publisher import DocumentPublisher
from ops.publishing.sources import read_path
from schemas.codec import Codecs


def publish_sample(settings: Settings, sample: Path) -> str:
    ensure_topics(settings.kafka)
    correlation_id = mint_correlation_id()
    codec = Codecs.create(settings.schema_registry_url).documents
    publisher = DocumentPublisher(settings.kafka, codec, correlation_id, mint_traceparent())
    report = publisher.publish(read_path(sample))
    print(f"[run] sample corpus: {report.summary()}", flush=True)
    return correlation_id
