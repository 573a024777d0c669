"""The settings of the topics docstream creates (their creation itself runs
against a real broker in tests/integration/test_topics.py)."""

from __future__ import annotations

from core.kafka.admin import NOTICE_RETENTION_MS, topic_config
from core.settings import KafkaSettings


def test_every_topic_requires_the_configured_in_sync_replicas() -> None:
    kafka = KafkaSettings(replication_factor=3, min_insync_replicas=2)
    for name in kafka.topics.all():
        assert topic_config(kafka, name)["min.insync.replicas"] == "2", name


def test_only_the_notices_expire_and_dead_letters_take_twice_an_event() -> None:
    kafka = KafkaSettings()
    topics = kafka.topics
    assert topic_config(kafka, topics.chunks_indexed)["retention.ms"] == str(NOTICE_RETENTION_MS)
    assert "retention.ms" not in topic_config(kafka, topics.documents)
    dead = topic_config(kafka, topics.dead_letter(topics.documents))
    assert dead["max.message.bytes"] == str(2 * kafka.max_message_bytes)
