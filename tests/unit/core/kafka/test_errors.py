"""confluent-kafka's exceptions become the project's in one place
(core/kafka/errors.py): an outage is told from a refusal."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from core.kafka.errors import (
    KafkaRefused,
    KafkaUnavailable,
    failure,
    kafka_errors,
    translated,
    unavailable,
)


def kafka(code: int) -> KafkaException:
    return KafkaException(KafkaError(code))


def test_only_errors_of_an_unreachable_cluster_are_an_outage() -> None:
    assert unavailable(kafka(KafkaError._ALL_BROKERS_DOWN))
    assert unavailable(KafkaUnavailable("no broker answered"))
    assert not unavailable(kafka(KafkaError.TOPIC_ALREADY_EXISTS))
    assert not unavailable(ConnectionError("not a Kafka error"))


def test_a_refusal_is_not_waited_for_and_says_what_was_done() -> None:
    refused = translated(kafka(KafkaError.TOPIC_AUTHORIZATION_FAILED), "listing the topics")
    assert isinstance(refused, KafkaRefused)
    assert str(refused).startswith("listing the topics: ")
    assert "TOPIC_AUTHORIZATION_FAILED" in str(refused)
    assert isinstance(failure(KafkaError(KafkaError._TRANSPORT)), KafkaUnavailable)
    other = ValueError("ours")
    assert translated(other) is other


def test_the_library_exception_leaves_as_the_cause() -> None:
    with pytest.raises(KafkaUnavailable) as raised, kafka_errors("reading"):
        raise kafka(KafkaError._TIMED_OUT)
    assert isinstance(raised.value.__cause__, KafkaException)
