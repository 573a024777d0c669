"""How every docstream Kafka client is configured, in one place.

`client_config` is the base of every confluent-kafka client the project builds
(the bootstrap servers, the security of `core/kafka/security.py`, librdkafka's
own logging off); `producer_config` and `consumer_config` add what producers
and consumers share. The Faust app's aiokafka clients take the same servers,
security and producer guarantees from `faust_settings`. Both read the
constants below, so the acknowledgement and compression of the pipeline's
writes cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from core.kafka.security import faust_credentials, librdkafka_security
from core.settings import KafkaSettings

# Idempotent writes acknowledged by every in-sync replica: an acknowledged
# event is never lost and a retried one is never written twice.
ACKS_ALL = -1  # librdkafka's and aiokafka's spelling of acks=all
COMPRESSION = "lz4"
# The largest event (compressed, as the broker counts) a producer sends when
# its caller names no limit: what docstream's topics take by default.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
# How long a producer waits to fill a batch. The default suits a caller that
# waits on each write (the HTTP intake answers only once Kafka acknowledged).
LINGER_MS = 2
# Bulk producers (the publisher, the dead-letter redrive) send many events and
# nobody waits on one: a longer linger makes fuller, better-compressed batches.
BULK_LINGER_MS = 5
# How long a write may wait for its acknowledgement before it is reported failed.
DELIVERY_TIMEOUT_S = 10.0
# The Faust app's producer also writes dead letters, each carrying a whole
# original event that a compressing producer may have sent far larger than the
# broker's limit on its compressed batch: the size that matters is checked by
# the broker, so the client-side cap is set well above any topic's limit.
FAUST_MAX_REQUEST_BYTES = 64 * 1024 * 1024


def client_config(kafka: KafkaSettings, **overrides: Any) -> dict[str, Any]:
    """The base of every confluent-kafka client: servers and security.
    librdkafka's own log lines are off (log_level 0): callers report the
    failures that matter themselves, and its log could echo configuration.
    `overrides` are further settings under librdkafka's names."""
    return {
        "bootstrap.servers": kafka.bootstrap_servers,
        **librdkafka_security(kafka.security),
        "log_level": 0,
        **overrides,
    }


def producer_config(
    kafka: KafkaSettings,
    *,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    linger_ms: int = LINGER_MS,
    delivery_timeout_s: float = DELIVERY_TIMEOUT_S,
) -> dict[str, Any]:
    """The configuration every docstream producer uses."""
    return client_config(
        kafka,
        **{
            "enable.idempotence": True,
            "acks": ACKS_ALL,
            "compression.type": COMPRESSION,
            "linger.ms": linger_ms,
            "message.timeout.ms": int(delivery_timeout_s * 1000),
            "message.max.bytes": max_message_bytes,
        },
    )


def consumer_config(kafka: KafkaSettings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """A consumer that commits only what its owner says is done."""
    return client_config(kafka, **{"group.id": group_id, "enable.auto.commit": False, **overrides})


def faust_producer_settings() -> dict[str, Any]:
    """The Faust app's producer settings: the same acknowledgement and codec."""
    return {
        "producer_acks": ACKS_ALL,
        "producer_compression_type": COMPRESSION,
        "producer_max_request_size": FAUST_MAX_REQUEST_BYTES,
    }


def faust_settings(kafka: KafkaSettings) -> dict[str, Any]:
    """What the Faust app needs to reach Kafka as every other client does: the
    brokers, the same security (SASL and TLS as aiokafka takes them), and the
    producer guarantees above."""
    brokers = [f"kafka://{s.strip()}" for s in kafka.bootstrap_servers.split(",") if s.strip()]
    credentials = faust_credentials(kafka.security)
    return {
        "broker": brokers,
        **({"broker_credentials": credentials} if credentials is not None else {}),
        **faust_producer_settings(),
    }
