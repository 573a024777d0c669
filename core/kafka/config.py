"""How every docstream producer writes to Kafka, in one place.

The confluent-kafka producers (the HTTP intake's `AsyncProducer`, the
publisher, the dead-letter redrive) take their configuration from
`producer_config`; the Faust app's aiokafka producer takes the same guarantees
from `faust_producer_settings`. Both read the constants below, so the
acknowledgement and compression of the pipeline's writes cannot drift apart.
"""

from __future__ import annotations

from typing import Any

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


def producer_config(
    bootstrap_servers: str,
    *,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    linger_ms: int = LINGER_MS,
    delivery_timeout_s: float = DELIVERY_TIMEOUT_S,
) -> dict[str, Any]:
    """The confluent-kafka producer configuration every docstream producer uses."""
    return {
        "bootstrap.servers": bootstrap_servers,
        "enable.idempotence": True,
        "acks": ACKS_ALL,
        "compression.type": COMPRESSION,
        "linger.ms": linger_ms,
        "message.timeout.ms": int(delivery_timeout_s * 1000),
        "message.max.bytes": max_message_bytes,
        "log_level": 0,
    }


def faust_producer_settings() -> dict[str, Any]:
    """The Faust app's producer settings: the same acknowledgement and codec."""
    return {
        "producer_acks": ACKS_ALL,
        "producer_compression_type": COMPRESSION,
        "producer_max_request_size": FAUST_MAX_REQUEST_BYTES,
    }
