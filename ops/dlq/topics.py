"""The Kafka side of `docstream dlq`: read the dead-letter topics to their end
(`core/kafka/reading.py`: by assignment, never committing), redrive to the
source topics (`core/kafka/bulk.py`), keep the redrive ledger, and delete
records for a purge (`core/kafka/offsets.py`). The logic it applies is
`ops/dlq/letters.py`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from core.kafka.admin import ensure_topics
from core.kafka.bulk import BulkProducer, Delivery
from core.kafka.offsets import Bounds, Offsets
from core.kafka.reading import read_to_end
from core.kafka.records import Record
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
READER = "docstream-dlq-reader"  # the consumers' name: assigned, never a group member


class DeadLetterTopics:
    """The dead-letter topics of one deployment."""

    def __init__(self, settings: Settings, codecs: Codecs, timeout_s: float = 30.0) -> None:
        self.settings = settings
        self.codecs = codecs
        self.timeout_s = timeout_s
        self.offsets = Offsets(settings.kafka, timeout_s)

    def dlq_topic(self, source: str) -> str:
        return f"{self.settings.kafka.topics.prefix}{source}.dlq"

    def read(self, sources: Sequence[str] = SOURCES) -> list[DeadLetter]:
        letters = []
        for source in sources:
            topic = self.dlq_topic(source)
            codec = self.codecs.dead_letters
            letters += [dead_letter(source, topic, r, codec) for r in self._records(topic)]
        return letters

    def read_ledger(self, sources: Sequence[str] = SOURCES) -> dict[str, dict[str, Any]]:
        entries: dict[str, dict[str, Any]] = {}
        for source in sources:
            for record in self._records(ledger_topic(self.dlq_topic(source))):
                try:
                    entry = json.loads(record.value or b"")
                    entries[f"{source}:{entry['partition']}:{entry['offset']}"] = entry
                except (ValueError, KeyError, TypeError):
                    continue  # not ours: a ledger only ever holds our JSON
        return entries

    def redrive(self, steps: Sequence[Step]) -> list[Outcome]:
        todo = [Outcome(s) for s in steps if s.action == "redrive"]
        if not todo:
            return []
        # A redrive is a bulk write (nobody waits on one letter): the publisher's linger.
        producer = BulkProducer(self.settings.kafka, self.timeout_s)
        for outcome in todo:
            self._produce(producer, outcome)
        unsent = producer.flush()
        for outcome in todo:
            if not outcome.to and not outcome.error:
                outcome.error = f"not acknowledged in time ({unsent} unacknowledged)"
        self._record(producer, [o for o in todo if o.to])
        return todo

    def _produce(self, producer: BulkProducer, outcome: Outcome) -> None:
        letter = outcome.step.letter
        assert letter.record is not None and letter.origin is not None
        topic, partition, _ = letter.origin

        def delivered(delivery: Delivery) -> None:
            if delivery.error is None:
                outcome.to = delivery.address
            else:
                outcome.error = delivery.error

        producer.send(
            topic,
            letter.record["value"],
            key=letter.record.get("key"),
            headers=redrive_headers(letter),
            partition=partition,
            on_delivery=delivered,
        )

    def _record(self, producer: BulkProducer, done: Sequence[Outcome]) -> None:
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
            producer.send(ledger_topic(letter.dlq_topic), json.dumps(entry), key=key)
        if producer.flush():
            raise RuntimeError(
                "the redrive ledger was not acknowledged: a later run may redrive again"
            )

    def ends(self, sources: Sequence[str] = SOURCES) -> dict[str, Bounds]:
        """(first, end) offsets of every partition of each dead-letter topic and ledger."""
        names = [self.dlq_topic(s) for s in sources]
        return self.offsets.bounds(names + [ledger_topic(n) for n in names])

    def purge(self, ends: Mapping[str, Mapping[int, tuple[int, int]]]) -> dict[str, int]:
        """Delete every record below the given ends; how many went, per topic."""
        wanted = {
            topic: {p: end for p, (first, end) in partitions.items() if end > first}
            for topic, partitions in ends.items()
        }
        if not any(wanted.values()):
            return {}
        self.offsets.delete_before(wanted)
        return {
            topic: sum(end - first for first, end in partitions.values())
            for topic, partitions in ends.items()
        }

    def _records(self, topic: str) -> list[Record]:
        """Every record of a topic, up to the end each partition had when asked."""
        return read_to_end(self.settings.kafka, topic, self.timeout_s, READER)
