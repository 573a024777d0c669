"""Every docstream producer writes with the same guarantees (core/kafka/config.py),
and every admin client comes from one factory (core/kafka/admin.py)."""

from typing import Any

import pytest
from confluent_kafka import Producer

from core.kafka import admin
from core.kafka.bulk import bulk_producer_config as publisher_config
from core.kafka.config import (
    ACKS_ALL,
    BULK_LINGER_MS,
    COMPRESSION,
    FAUST_MAX_REQUEST_BYTES,
    LINGER_MS,
    faust_producer_settings,
    producer_config,
)
from core.settings import KafkaSettings, Settings
from streams.app import create_faust_app

B1 = KafkaSettings(bootstrap_servers="b:1")


def test_the_producer_config_is_idempotent_acks_all_lz4_with_its_defaults() -> None:
    config = producer_config(KafkaSettings(bootstrap_servers="broker:9092"))
    assert config["bootstrap.servers"] == "broker:9092"
    assert config["enable.idempotence"] is True
    assert config["acks"] == -1 and config["compression.type"] == "lz4"
    assert config["linger.ms"] == 2
    assert config["message.timeout.ms"] == 10_000
    assert config["message.max.bytes"] == 8 * 1024 * 1024
    Producer(config)  # librdkafka accepts every key and value


def test_a_caller_sets_linger_size_and_timeout_but_not_the_guarantees() -> None:
    config = producer_config(B1, max_message_bytes=1000, linger_ms=7, delivery_timeout_s=2.5)
    assert (config["linger.ms"], config["message.max.bytes"], config["message.timeout.ms"]) == (
        7,
        1000,
        2500,
    )
    assert config["acks"] == ACKS_ALL and config["compression.type"] == COMPRESSION


def test_the_publisher_is_a_bulk_producer_with_the_topics_limit() -> None:
    settings = KafkaSettings(bootstrap_servers="b:1", max_message_bytes=3_000_000)
    config = publisher_config(settings, delivery_timeout_s=30.0)
    assert config == producer_config(
        settings, max_message_bytes=3_000_000, linger_ms=BULK_LINGER_MS, delivery_timeout_s=30.0
    )
    assert BULK_LINGER_MS > LINGER_MS


def test_the_faust_producer_has_the_same_acks_and_codec() -> None:
    app = create_faust_app(Settings(), web=False)
    assert app.conf.producer_acks == ACKS_ALL
    assert app.conf.producer_compression_type == COMPRESSION
    assert app.conf.producer_max_request_size == FAUST_MAX_REQUEST_BYTES
    assert faust_producer_settings()["producer_acks"] == producer_config(B1)["acks"]


def test_the_admin_factory_is_quiet_and_takes_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, Any]] = []
    monkeypatch.setattr(admin, "AdminClient", lambda config: made.append(config) or config)
    admin.admin_client(B1)
    admin.admin_client(KafkaSettings(bootstrap_servers="b:2"), **{"socket.timeout.ms": 500})
    plain = {"security.protocol": "plaintext", "log_level": 0}
    assert made == [
        {"bootstrap.servers": "b:1", **plain},
        {"bootstrap.servers": "b:2", **plain, "socket.timeout.ms": 500},
    ]
