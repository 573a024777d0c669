from pathlib import Path

import pytest

from core.settings import Settings, Topics


def test_defaults_work_with_the_local_stack() -> None:
    settings = Settings.from_env({})
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.neo4j.uri == "bolt://127.0.0.1:7687"
    assert settings.neo4j.auth is None
    assert settings.qdrant.embedded and settings.qdrant.path == Path(".stack/qdrant")


def test_environment_overrides() -> None:
    settings = Settings.from_env(
        {
            "QDRANT_URL": "http://qdrant:6333",
            "NEO4J_USER": "neo4j",
            "NEO4J_PASSWORD": "secret",
            "DOCSTREAM_TOPIC_PREFIX": "t.",
            "DOCSTREAM_API_PORT": "9000",
        }
    )
    assert not settings.qdrant.embedded
    assert settings.neo4j.auth == ("neo4j", "secret")
    assert settings.kafka.topics.documents == "t.documents"
    assert settings.api.port == 9000


def test_a_bad_number_names_its_variable() -> None:
    with pytest.raises(ValueError, match="DOCSTREAM_API_PORT"):
        Settings.from_env({"DOCSTREAM_API_PORT": "eighty"})


def test_every_stage_has_a_dead_letter_topic() -> None:
    topics = Topics(prefix="p.")
    assert topics.all() == [
        "p.documents",
        "p.chunks",
        "p.chunks.embedded",
        "p.documents.dlq",
        "p.chunks.dlq",
        "p.chunks.embedded.dlq",
        "p.chunks.indexed",
    ]


def test_a_worker_runs_every_stage_by_default() -> None:
    assert Settings.from_env({}).worker_stages == (
        "chunker",
        "embedder",
        "qdrant-sink",
        "neo4j-sink",
    )


def test_worker_stages_can_be_split() -> None:
    env = {"DOCSTREAM_WORKER_STAGES": " chunker, embedder ,neo4j-sink,embedder"}
    assert Settings.from_env(env).worker_stages == ("chunker", "embedder", "neo4j-sink")


@pytest.mark.parametrize(
    ("value", "message"),
    [("chunker,embeder", "embeder"), ("embedder,neo4j-sink", "must include chunker")],
)
def test_bad_worker_stages_say_what_is_wrong(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env({"DOCSTREAM_WORKER_STAGES": value})


def test_size_limits_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {"DOCSTREAM_MAX_MESSAGE_BYTES": "2000000", "DOCSTREAM_MAX_TEXT_BYTES": "1000"}
    )
    assert settings.kafka.max_message_bytes == 2_000_000
    assert settings.kafka.dead_letter_max_bytes == 4_000_000
    assert settings.chunker.max_text_bytes == 1000
