"""The Kafka admin client every docstream module uses, and the pipeline's
topics created if they are missing (idempotent)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from core.kafka.config import client_config
from core.kafka.errors import kafka_errors
from core.settings import KafkaSettings, Topics


def admin_client(kafka: KafkaSettings, **overrides: Any) -> AdminClient:
    """The one place an AdminClient is made (`client_config`: servers,
    security, quiet). `overrides` are further client settings under their
    librdkafka names, e.g. `admin_client(kafka, **{"socket.timeout.ms": 500})`."""
    return AdminClient(client_config(kafka, **overrides))


def ensure_topics(
    settings: KafkaSettings, names: Iterable[str] | None = None, timeout_s: float = 15.0
) -> list[str]:
    """Create the missing topics; return the ones this call created. Kafka's
    failures leave as `KafkaUnavailable` (wait it out) or `KafkaRefused`."""
    with kafka_errors("creating docstream's topics"):
        return _create_missing(settings, names, timeout_s)


def _create_missing(
    settings: KafkaSettings, names: Iterable[str] | None, timeout_s: float
) -> list[str]:
    admin = admin_client(settings)
    wanted = list(names if names is not None else settings.topics.all())
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    missing = [n for n in wanted if n not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [
            NewTopic(
                n,
                num_partitions=settings.partitions,
                replication_factor=settings.replication_factor,
                config=topic_config(settings, n),
            )
            for n in missing
        ],
        operation_timeout=timeout_s,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return created


# The notices of what the sinks wrote serve live followers only: nothing is
# rebuilt from them, so an hour of them is plenty.
NOTICE_RETENTION_MS = 60 * 60 * 1000


def topic_config(settings: KafkaSettings, name: str) -> dict[str, str]:
    config = {
        "max.message.bytes": str(topic_max_bytes(settings, name)),
        "min.insync.replicas": str(settings.min_insync_replicas),
    }
    if name == settings.topics.chunks_indexed:
        config["retention.ms"] = str(NOTICE_RETENTION_MS)
    return config


def topic_max_bytes(settings: KafkaSettings, name: str) -> int:
    """Dead-letter topics take twice an event: the original and its reason."""
    if name.endswith(Topics.dead_letter("")):
        return settings.dead_letter_max_bytes
    return settings.max_message_bytes
