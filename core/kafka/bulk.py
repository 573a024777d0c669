"""The producer of bulk writes, `docstream publish` and the dead-letter
redrive: many events, nobody waiting on one, so a longer linger for fuller,
better-compressed batches (`BULK_LINGER_MS`); the guarantees of every docstream
producer (`producer_config`: idempotent, acks=all, lz4, security).

Each event's outcome reaches its sender as a `Delivery`, so no caller reads
confluent-kafka's messages or errors; nothing counts as written until the
broker acknowledged it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from core.kafka.config import BULK_LINGER_MS, producer_config
from core.kafka.errors import kafka_errors
from core.settings import KafkaSettings

# How long a full local queue is given to drain before the event is queued again.
QUEUE_FULL_WAIT_S = 0.5


@dataclass(frozen=True, slots=True)
class Delivery:
    """What Kafka said of one event: where it was written, or why it was not."""

    topic: str
    partition: int
    offset: int
    error: str | None = None  # None: acknowledged

    @property
    def address(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"


Delivered = Callable[[Delivery], None]


def bulk_producer_config(kafka: KafkaSettings, delivery_timeout_s: float) -> dict[str, Any]:
    """Events up to the topics' limit, the bulk linger."""
    return producer_config(
        kafka,
        max_message_bytes=kafka.max_message_bytes,
        linger_ms=BULK_LINGER_MS,
        delivery_timeout_s=delivery_timeout_s,
    )


class BulkProducer:
    """Synchronous: `send` queues, `flush` waits for the acknowledgements; an
    event not acknowledged within `delivery_timeout_s` is reported failed."""

    def __init__(self, kafka: KafkaSettings, delivery_timeout_s: float) -> None:
        self.delivery_timeout_s = delivery_timeout_s
        self._producer = Producer(bulk_producer_config(kafka, delivery_timeout_s))

    def send(
        self,
        topic: str,
        value: bytes | str | None,
        *,
        key: bytes | str | None = None,
        headers: Sequence[tuple[str, str | bytes | None]] = (),
        partition: int | None = None,
        on_delivery: Delivered | None = None,
    ) -> None:
        """Queue one event. A full local queue is waited on (its deliveries
        served) until the event fits. Raises `KafkaRefused` for an event
        librdkafka will not queue (larger than the limit, an unknown partition)."""
        extra: dict[str, Any] = {} if partition is None else {"partition": partition}
        if on_delivery is not None:
            extra["on_delivery"] = _reporter(on_delivery)
        while True:
            try:
                with kafka_errors(f"queueing an event for {topic}"):
                    self._producer.produce(
                        topic, key=key, value=value, headers=list(headers), **extra
                    )
                break
            except BufferError:
                self._producer.poll(QUEUE_FULL_WAIT_S)
        self._producer.poll(0)  # serve the deliveries already in

    def flush(self, timeout_s: float | None = None) -> int:
        """Wait for every queued event's outcome (by default a little longer
        than the delivery timeout, after which librdkafka fails what is left);
        returns how many are still unacknowledged."""
        wait = self.delivery_timeout_s + 5 if timeout_s is None else timeout_s
        return int(self._producer.flush(wait))


def _reporter(on_delivery: Delivered) -> Callable[[KafkaError | None, Message], None]:
    def report(error: KafkaError | None, message: Message) -> None:
        on_delivery(
            Delivery(
                topic=message.topic() or "",
                partition=message.partition() or 0,
                offset=message.offset() or 0,
                error=None if error is None else error.str(),
            )
        )

    return report
