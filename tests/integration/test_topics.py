"""The topics docstream creates take events up to DOCSTREAM_MAX_MESSAGE_BYTES
(the broker's own default is about 1 MB), and its producers send them."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from confluent_kafka.admin import ConfigResource

from core.kafka.admin import admin_client, ensure_topics
from core.kafka.producer import AsyncProducer
from core.settings import KafkaSettings, Settings, Topics
from tools.stack.local import LocalStack

pytestmark = pytest.mark.integration


@pytest.fixture
def kafka(stack: LocalStack, base_settings: Settings) -> Iterator[KafkaSettings]:
    prefix = f"topics{uuid.uuid4().hex[:8]}."
    settings = replace(
        base_settings.kafka,
        topics=Topics(prefix=prefix),
        partitions=1,
        max_message_bytes=3 * 1024 * 1024,
    )
    ensure_topics(settings)
    yield settings
    admin = admin_client(settings)
    for future in admin.delete_topics(settings.topics.all()).values():
        future.result(timeout=30)


def configured(settings: KafkaSettings, topic: str, name: str) -> int:
    admin = admin_client(settings)
    [future] = admin.describe_configs([ConfigResource("topic", topic)]).values()
    return int(future.result(timeout=30)[name].value)


def configured_max(settings: KafkaSettings, topic: str) -> int:
    return configured(settings, topic, "max.message.bytes")


def test_the_sinks_notices_are_kept_an_hour_and_the_events_longer(kafka: KafkaSettings) -> None:
    hour = 60 * 60 * 1000
    assert configured(kafka, kafka.topics.chunks_indexed, "retention.ms") == hour
    assert configured(kafka, kafka.topics.documents, "retention.ms") != hour


def test_topics_take_the_configured_size_and_dead_letters_twice_it(kafka: KafkaSettings) -> None:
    assert configured_max(kafka, kafka.topics.documents) == 3 * 1024 * 1024
    assert configured_max(kafka, Topics.dead_letter(kafka.topics.documents)) == 6 * 1024 * 1024


def test_an_event_over_the_brokers_default_is_accepted(kafka: KafkaSettings) -> None:
    producer = AsyncProducer(kafka, 20.0)
    incompressible = os.urandom(1_000_000).hex().encode()  # 2 MB that lz4 cannot shrink
    try:
        asyncio.run(producer.send_all(kafka.topics.documents, [(b"big", incompressible, [])]))
    finally:
        producer.close()
