"""The Kafka side of `docstream dlq`: read the dead-letter topics by
assignment (never committing), redrive to the source topics, keep the redrive
ledger, and delete records for a purge. The logic it applies is `ops/dlq/letters.py`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from core.kafka.admin import admin_client, ensure_topics
from core.kafka.config import BULK_LINGER_MS, producer_config
from core.logs import get_logger
from core.settings import Settings
from ops.dlq.letters import (
    SOURCES,
    DeadLetter,
    Outcome,
    Step,
    dead_letter,
    ledger_topic,
    redrive_headers,
)
from schemas.codec import Codecs

log = get_logger(__name__)


class DeadLetterTopics:
    """The dead-letter topics of one deployment, through confluent-kafka."""

    def __init__(self, settings: Settings, codecs: Codecs, timeout_s: float = 30.0) -> None:
        self.settings = settings
        self.codecs = codecs
        self.timeout_s = timeout_s
        self.admin = admin_client(settings.kafka.bootstrap_servers)

    def dlq_topic(self, source: str) -> str:
        return f"{self.settings.kafka.topics.prefix}{source}.dlq"

    def read(self, sources: Sequence[str] = SOURCES) -> list[DeadLetter]:
        letters = []
        for source in sources:
            topic = self.dlq_topic(source)
            codec = self.codecs.dead_letters
            letters += [dead_letter(source, topic, m, codec) for m in self._messages(topic)]
        return letters

    def read_ledger(self, sources: Sequence[str] = SOURCES) -> dict[str, dict[str, Any]]:
        entries: dict[str, dict[str, Any]] = {}
        for source in sources:
            for message in self._messages(ledger_topic(self.dlq_topic(source))):
                try:
                    entry = json.loads(message.value() or b"")
                    entries[f"{source}:{entry['partition']}:{entry['offset']}"] = entry
                except (ValueError, KeyError, TypeError):
                    continue  # not ours: a ledger only ever holds our JSON
        return entries

    def redrive(self, steps: Sequence[Step]) -> list[Outcome]:
        todo = [Outcome(s) for s in steps if s.action == "redrive"]
        if not todo:
            return []
        kafka = self.settings.kafka
        # A redrive is a bulk write (nobody waits on one letter): the publisher's linger.
        config = producer_config(
            kafka.bootstrap_servers,
            max_message_bytes=kafka.max_message_bytes,
            linger_ms=BULK_LINGER_MS,
            delivery_timeout_s=self.timeout_s,
        )
        producer = Producer(config)
        for outcome in todo:
            self._produce(producer, outcome)
        unsent = producer.flush(self.timeout_s + 5)
        for outcome in todo:
            if not outcome.to and not outcome.error:
                outcome.error = f"not acknowledged in time ({unsent} unacknowledged)"
        self._record(producer, [o for o in todo if o.to])
        return todo

    def _produce(self, producer: Producer, outcome: Outcome) -> None:
        letter = outcome.step.letter
        assert letter.record is not None and letter.origin is not None
        topic, partition, _ = letter.origin

        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is None:
                outcome.to = f"{message.topic()}:{message.partition()}:{message.offset()}"
            else:
                outcome.error = error.str()

        producer.produce(
            topic,
            key=letter.record.get("key"),
            value=letter.record["value"],
            headers=[*redrive_headers(letter)],
            partition=partition,
            on_delivery=delivered,
        )
        producer.poll(0)

    def _record(self, producer: Producer, done: Sequence[Outcome]) -> None:
        """One ledger entry per redriven dead letter, once its event is acknowledged."""
        topics = {ledger_topic(o.step.letter.dlq_topic) for o in done}
        ensure_topics(replace(self.settings.kafka, partitions=1), sorted(topics), self.timeout_s)
        for outcome in done:
            letter = outcome.step.letter
            entry = {
                "partition": letter.partition,
                "offset": letter.offset,
                "to": outcome.to,
                "redrives": letter.redrives + 1,
                "correlation_id": letter.correlation_id,
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            key = f"{letter.partition}:{letter.offset}".encode()
            producer.produce(ledger_topic(letter.dlq_topic), key=key, value=json.dumps(entry))
        if producer.flush(self.timeout_s + 5):
            raise RuntimeError(
                "the redrive ledger was not acknowledged: a later run may redrive again"
            )

    def ends(self, sources: Sequence[str] = SOURCES) -> dict[str, dict[int, tuple[int, int]]]:
        """(first, end) offsets of every partition of each dead-letter topic and ledger."""
        names = [self.dlq_topic(s) for s in sources]
        names += [ledger_topic(n) for n in names]
        existing = self.admin.list_topics(timeout=self.timeout_s).topics
        consumer = self._consumer()
        try:
            return {
                name: {
                    p: consumer.get_watermark_offsets(
                        TopicPartition(name, p), timeout=self.timeout_s
                    )
                    for p in existing[name].partitions
                }
                for name in names
                if name in existing
            }
        finally:
            consumer.close()

    def purge(self, ends: Mapping[str, Mapping[int, tuple[int, int]]]) -> dict[str, int]:
        """Delete every record below the given ends; how many went, per topic."""
        wanted = [
            TopicPartition(topic, p, end)
            for topic, partitions in ends.items()
            for p, (first, end) in partitions.items()
            if end > first
        ]
        if not wanted:
            return {}
        futures = self.admin.delete_records(wanted, operation_timeout=self.timeout_s)
        for future in futures.values():
            future.result(timeout=self.timeout_s)
        return {
            topic: sum(end - first for first, end in partitions.values())
            for topic, partitions in ends.items()
        }

    def _consumer(self) -> Consumer:
        # Assigned, never subscribed, never committing: no group is joined or moved.
        return Consumer(
            {
                "bootstrap.servers": self.settings.kafka.bootstrap_servers,
                "group.id": f"docstream-dlq-reader-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                "log_level": 0,
            }
        )

    def _messages(self, topic: str) -> list[Message]:
        """Every record of a topic, up to the end each partition had when asked."""
        if topic not in self.admin.list_topics(timeout=self.timeout_s).topics:
            return []
        consumer = self._consumer()
        try:
            partitions = (
                consumer.list_topics(topic, timeout=self.timeout_s).topics[topic].partitions
            )
            bounds = {
                p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=self.timeout_s)
                for p in partitions
            }
            pending = {p: end for p, (first, end) in bounds.items() if end > first}
            consumer.assign([TopicPartition(topic, p, bounds[p][0]) for p in pending])
            return _drain(consumer, pending, time.monotonic() + self.timeout_s)
        finally:
            consumer.close()


def _drain(consumer: Consumer, pending: dict[int, int], deadline: float) -> list[Message]:
    messages: list[Message] = []
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"partitions {sorted(pending)} not read to their end in time")
        for message in consumer.consume(500, timeout=0.5):
            partition = message.partition() or 0
            end = pending.get(partition)
            if end is None:
                continue
            error = message.error()
            if error is not None and error.code() != KafkaError._PARTITION_EOF:
                raise RuntimeError(f"reading partition {partition}: {error.str()}")
            offset = message.offset() or 0
            if error is None and offset < end:
                messages.append(message)
            if error is not None or offset + 1 >= end:
                del pending[partition]
    return messages
