"""Reading a topic by assignment, with no consumer group joined and nothing
committed, so no group is created or moved: `read_to_end` reads what a topic
holds now (`docstream dlq`), a `TopicTail` what is written to it from now on
(follow mode's notices). Where partitions start and end comes from
`core/kafka/offsets.py`; the consumers from `consumer_config`, so the
security settings reach them as every client."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from core.kafka.admin import ensure_topics
from core.kafka.config import consumer_config
from core.kafka.errors import KafkaRefused, KafkaUnavailable, failure
from core.kafka.offsets import Bounds, Offsets
from core.kafka.records import Record
from core.logs import get_logger
from core.settings import KafkaSettings

log = get_logger(__name__)
FETCH_S = 0.5


def read_to_end(
    kafka: KafkaSettings, topic: str, timeout_s: float, reader: str = "docstream-reader"
) -> list[Record]:
    """Every record of `topic`, from each partition's first offset to the end
    it had when asked (in offset order within a partition); [] for a topic
    that does not exist. `reader` names the consumer (a group id librdkafka
    wants, never joined). Raises TimeoutError when a partition is not read to
    its end within `timeout_s`, `KafkaRefused` when Kafka refuses a fetch."""
    bounds = Offsets(kafka, timeout_s).bounds([topic])
    if topic not in bounds:
        return []
    return read_range(kafka, topic, bounds[topic], timeout_s, reader)


def read_range(
    kafka: KafkaSettings, topic: str, bounds: Bounds, timeout_s: float, reader: str
) -> list[Record]:
    """The records of `topic` within `bounds`: [first, end) of each partition."""
    pending = {p: end for p, (first, end) in bounds.items() if end > first}
    if not pending:
        return []
    consumer = Consumer(
        consumer_config(
            kafka,
            f"{reader}-{uuid.uuid4().hex[:8]}",
            **{
                # The end may be a record the consumer is never given (a
                # transaction's marker): the partition's EOF ends it then.
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
            },
        )
    )
    try:
        consumer.assign([TopicPartition(topic, p, bounds[p][0]) for p in pending])
        return _drain(consumer, pending, time.monotonic() + timeout_s)
    finally:
        consumer.close()


def _drain(consumer: Consumer, pending: dict[int, int], deadline: float) -> list[Record]:
    records: list[Record] = []
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"partitions {sorted(pending)} not read to their end in time")
        for message in consumer.consume(500, timeout=FETCH_S):
            partition = message.partition() or 0
            end = pending.get(partition)
            if end is None:
                continue
            error = message.error()
            if error is not None and error.code() != KafkaError._PARTITION_EOF:
                raise failure(error, f"reading partition {partition}")
            offset = message.offset() or 0
            if error is None and offset < end:
                records.append(Record.of(message))
            if error is not None or offset + 1 >= end:
                del pending[partition]
    return records


class TopicTail:
    """Every record written to `topic` after the tail opened, handed to
    `on_record` on a thread of its own: every partition is assigned from its
    end, with no group, so any number of processes each read all of it.

    The topic is created if missing (a reader may start before its writer),
    as `ensure_topics` makes it. While Kafka does not answer, the tail tries
    again every `RETRY_S`; `assigned` is set once it reads. `name` and `what`
    word its thread and its log lines ("follow", "notices")."""

    RETRY_S = 2.0
    POLL_S = 0.2

    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        on_record: Callable[[Record], None],
        *,
        name: str,
        what: str = "records",
    ) -> None:
        self.kafka = kafka
        self.topic = topic
        self.on_record = on_record
        self.name = name
        self.what = what
        self.assigned = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"{self.name}-{self.what}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Blocks until the thread ended (or `timeout_s` passed)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _open(self) -> Consumer:
        ensure_topics(self.kafka, [self.topic])
        ends = Offsets(self.kafka).bounds([self.topic]).get(self.topic)
        if not ends:
            raise KafkaUnavailable(f"topic {self.topic} has no partitions yet")
        consumer = Consumer(
            consumer_config(
                self.kafka,
                f"docstream-{self.name}",  # librdkafka wants one; never joined, nothing committed
                **{"fetch.wait.max.ms": 20},  # a tail's records are waited for by people
            )
        )
        consumer.assign([TopicPartition(self.topic, p, end) for p, (_, end) in ends.items()])
        return consumer

    def _run(self) -> None:
        consumer = None
        while consumer is None and not self._stop.is_set():
            try:
                consumer = self._open()
            except (KafkaUnavailable, KafkaRefused, KafkaException) as exc:
                # Kafka not there yet (or the topic not made yet): the readers wait for it.
                log.warning(
                    f"{self.name}: {self.what} not readable yet",
                    extra={"topic": self.topic, "error": repr(exc)},
                )
                self._stop.wait(self.RETRY_S)
        if consumer is None:
            return
        self.assigned.set()
        log.info(f"{self.name}: reading {self.what}", extra={"topic": self.topic})
        try:
            while not self._stop.is_set():
                message = consumer.poll(self.POLL_S)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning(f"{self.name}: {self.what} error", extra={"error": str(error)})
                    continue
                self.on_record(Record.of(message))
        finally:
            consumer.close()
