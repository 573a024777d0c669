"""Where partitions start and end, and where a consumer group stands in them,
asked of the brokers, once for the whole project: what reading a topic to its
end (`core/kafka/reading.py`, `core/kafka/catchup.py`), a tail from its end,
`docstream status`'s lag and `docstream dlq purge` all need.

Everything goes through one admin client (`core/kafka/admin.py`: servers and
security as every client), with no consumer and no group joined: asking where
a group stands, or placing it, leaves its members alone. A failure leaves as
the project's `KafkaUnavailable` or `KafkaRefused` (`core/kafka/errors.py`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from core.kafka.admin import admin_client
from core.kafka.errors import kafka_errors
from core.settings import KafkaSettings

# partition → (first offset still there, end offset: the next one to be written)
Bounds = dict[int, tuple[int, int]]


@dataclass(frozen=True)
class Replicas:
    """Where one partition's copies are, by broker id."""

    leader: int  # -1: no leader, the partition is offline
    replicas: tuple[int, ...]
    in_sync: tuple[int, ...]

    @property
    def under_replicated(self) -> bool:
        return len(self.in_sync) < len(self.replicas)


@dataclass(frozen=True)
class Cluster:
    brokers: list[str]  # "id@host:port"
    topics: dict[str, list[int]]  # every topic there and its partitions, in order
    # topic → partition → its replicas (the same metadata answer as `topics`)
    replicas: dict[str, dict[int, Replicas]] = field(default_factory=dict)


class Offsets:
    """One admin client's view of the offsets of a cluster; every call waits at
    most `timeout_s` for its answer."""

    def __init__(self, kafka: KafkaSettings, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s
        self._admin: AdminClient = admin_client(kafka)

    def cluster(self) -> Cluster:
        with kafka_errors("listing the topics"):
            metadata = self._admin.list_topics(timeout=self.timeout_s)
        return Cluster(
            brokers=[
                f"{b.id}@{b.host}:{b.port}"
                for b in sorted(metadata.brokers.values(), key=lambda b: b.id)
            ],
            topics={name: sorted(t.partitions) for name, t in metadata.topics.items()},
            replicas={
                name: {
                    p: Replicas(part.leader, tuple(part.replicas), tuple(part.isrs))
                    for p, part in sorted(t.partitions.items())
                }
                for name, t in metadata.topics.items()
            },
        )

    def bounds(self, topics: Iterable[str]) -> dict[str, Bounds]:
        """(first, end) of every partition of each of `topics` that exists; a
        topic that does not is left out."""
        there = self.cluster().topics
        partitions = {t: there[t] for t in dict.fromkeys(topics) if t in there}
        first = self._listed(partitions, OffsetSpec.earliest())
        end = self._listed(partitions, OffsetSpec.latest())
        return {t: {p: (first[t, p], end[t, p]) for p in ps} for t, ps in partitions.items()}

    def at_time(
        self, topic: str, partitions: Iterable[int], stamp_ms: int
    ) -> dict[int, int | None]:
        """Per partition, the first offset whose record is stamped at or after
        `stamp_ms` (milliseconds since the epoch); None where none is."""
        listed = self._listed({topic: list(partitions)}, OffsetSpec.for_timestamp(stamp_ms))
        return {p: offset if offset >= 0 else None for (_, p), offset in listed.items()}

    def committed(self, group: str, topic: str, partitions: Iterable[int]) -> dict[int, int]:
        """The offsets `group` has committed in `topic`: a partition it never
        committed is left out."""
        wanted = [TopicPartition(topic, p) for p in partitions]
        if not wanted:
            return {}
        request = [ConsumerGroupTopicPartitions(group, wanted)]
        with kafka_errors(f"reading the offsets of group {group}"):
            futures = self._admin.list_consumer_group_offsets(
                request, request_timeout=self.timeout_s
            )
            answer = futures[group].result(self.timeout_s)
        return {tp.partition: tp.offset for tp in answer.topic_partitions if tp.offset >= 0}

    def commit(self, group: str, topic: str, offsets: Mapping[int, int]) -> None:
        """Place `group` at `offsets` in `topic` (a group with no member in it)."""
        placed = [TopicPartition(topic, p, o) for p, o in offsets.items()]
        if not placed:
            return
        request = [ConsumerGroupTopicPartitions(group, placed)]
        with kafka_errors(f"committing the offsets of group {group}"):
            futures = self._admin.alter_consumer_group_offsets(
                request, request_timeout=self.timeout_s
            )
            futures[group].result(self.timeout_s)

    def delete_before(self, offsets: Mapping[str, Mapping[int, int]]) -> None:
        """Delete every record below `offsets` (topic → partition → offset): each
        partition then starts there."""
        wanted = [TopicPartition(t, p, o) for t, ps in offsets.items() for p, o in ps.items()]
        if not wanted:
            return
        with kafka_errors("deleting records"):
            futures = self._admin.delete_records(wanted, operation_timeout=self.timeout_s)
            for future in futures.values():
                future.result(self.timeout_s)

    def _listed(
        self, partitions: Mapping[str, Iterable[int]], spec: OffsetSpec
    ) -> dict[tuple[str, int], int]:
        wanted = {TopicPartition(t, p): spec for t, ps in partitions.items() for p in ps}
        if not wanted:
            return {}
        with kafka_errors("listing offsets"):
            futures = self._admin.list_offsets(wanted, request_timeout=self.timeout_s)
            return {
                (tp.topic, tp.partition): future.result(self.timeout_s).offset
                for tp, future in futures.items()
            }
