"""Offsets asked of the brokers (core/kafka/offsets.py) against a fake admin
client: bounds of the topics that exist only, a group's commits without the
partitions it never committed, and a failure as the project's exception."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec

from core.kafka import offsets
from core.kafka.errors import KafkaUnavailable
from core.kafka.offsets import Offsets, Replicas
from core.settings import KafkaSettings

FIRST = {("a", 0): 2, ("a", 1): 0}
END = {("a", 0): 10, ("a", 1): 4}


def done(value: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(value)
    return future


class FakeAdmin:
    down = False

    def list_topics(self, timeout: float) -> Any:
        if self.down:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        # Partition 1 lost broker 3 from its in-sync replicas; partition 0 is whole.
        whole = SimpleNamespace(leader=1, replicas=[1, 2, 3], isrs=[1, 2, 3])
        short = SimpleNamespace(leader=2, replicas=[2, 3, 1], isrs=[2, 1])
        topic = SimpleNamespace(partitions={1: short, 0: whole})
        brokers = {n: SimpleNamespace(id=n, host="k", port=9090 + n) for n in (2, 1, 3)}
        return SimpleNamespace(brokers=brokers, topics={"a": topic})

    def list_offsets(self, wanted: dict[TopicPartition, Any], request_timeout: float) -> Any:
        def offset(tp: TopicPartition, spec: Any) -> int:
            if isinstance(spec, type(OffsetSpec.earliest())):
                return FIRST[tp.topic, tp.partition]
            if isinstance(spec, type(OffsetSpec.latest())):
                return END[tp.topic, tp.partition]
            return 3 if tp.partition == 0 else -1  # by time: none in partition 1

        return {tp: done(SimpleNamespace(offset=offset(tp, s))) for tp, s in wanted.items()}

    def list_consumer_group_offsets(self, request: list[Any], request_timeout: float) -> Any:
        [asked] = request
        answer = [TopicPartition("a", 0, 7), TopicPartition("a", 1, -1001)]
        return {asked.group_id: done(SimpleNamespace(topic_partitions=answer))}


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> FakeAdmin:
    fake = FakeAdmin()
    monkeypatch.setattr(offsets, "admin_client", lambda _kafka: fake)
    return fake


def test_bounds_cover_the_topics_that_exist(admin: FakeAdmin) -> None:
    view = Offsets(KafkaSettings())
    cluster = view.cluster()
    assert cluster.brokers == ["1@k:9091", "2@k:9092", "3@k:9093"]
    assert cluster.replicas["a"][0] == Replicas(1, (1, 2, 3), (1, 2, 3))
    assert [r.under_replicated for r in cluster.replicas["a"].values()] == [False, True]
    assert view.bounds(["a", "missing"]) == {"a": {0: (2, 10), 1: (0, 4)}}
    assert view.at_time("a", [0, 1], 1_700_000_000_000) == {0: 3, 1: None}


def test_a_partition_never_committed_is_left_out(admin: FakeAdmin) -> None:
    assert Offsets(KafkaSettings()).committed("g", "a", [0, 1]) == {0: 7}


def test_no_broker_is_kafka_unavailable(admin: FakeAdmin) -> None:
    admin.down = True
    with pytest.raises(KafkaUnavailable, match="listing the topics"):
        Offsets(KafkaSettings()).bounds(["a"])
