from pathlib import Path

import pytest

from core.settings import Secret, Settings, Topics


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


def test_a_secret_never_shows_its_value() -> None:
    secret = Secret("hunter2")
    assert secret.reveal() == "hunter2" and secret
    assert "hunter2" not in f"{secret} {secret!r} {[secret]}"
    assert not Secret() and repr(Secret()) == "Secret(unset)"
    settings = Settings.from_env(
        {
            "NEO4J_USER": "neo4j",
            "NEO4J_PASSWORD": "hunter2",
            "QDRANT_API_KEY": "hunter2",
            "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
            "KAFKA_SASL_USERNAME": "docstream",
            "KAFKA_SASL_PASSWORD": "hunter2",
        }
    )
    assert "hunter2" not in repr(settings), "a settings object in a log line shows no secret"
    assert settings.neo4j.auth == ("neo4j", "hunter2")
    assert settings.kafka.security.protocol == "SASL_SSL"
    assert settings.kafka.security.describe() == "SASL_SSL, SCRAM-SHA-512 as docstream"


def test_a_secret_comes_from_its_file_less_one_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from a file\n")
    settings = Settings.from_env(
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_USERNAME": "docstream",
            "KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "pw"),
            "NEO4J_PASSWORD_FILE": str(tmp_path / "pw"),
            "QDRANT_API_KEY_FILE": str(tmp_path / "pw"),
            "DOCSTREAM_API_KEYS_FILE": str(tmp_path / "pw"),
        }
    )
    assert settings.kafka.security.password.reveal() == "from a file"
    assert settings.neo4j.password.reveal() == "from a file"
    assert settings.qdrant.api_key.reveal() == "from a file"
    assert settings.api.api_keys == frozenset({"from a file"})


def test_a_secret_file_that_cannot_be_read_or_set_twice_is_named_not_shown(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"NEO4J_PASSWORD_FILE=.*cannot be read"):
        Settings.from_env({"NEO4J_PASSWORD_FILE": str(tmp_path / "absent")})
    with pytest.raises(ValueError, match="set NEO4J_PASSWORD or NEO4J_PASSWORD_FILE, not both"):
        Settings.from_env({"NEO4J_PASSWORD": "x", "NEO4J_PASSWORD_FILE": str(tmp_path / "pw")})


def test_tls_settings_of_the_stores(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "NEO4J_URI": "bolt://db:7687",
            "NEO4J_CA_FILE": str(tmp_path / "ca.crt"),
            "QDRANT_URL": "https://qdrant:6333",
            "QDRANT_CA_FILE": str(tmp_path / "ca.crt"),
        }
    )
    assert settings.neo4j.tls and settings.neo4j.ca_file == tmp_path / "ca.crt"
    assert settings.qdrant.ca_file == tmp_path / "ca.crt"
    assert Settings.from_env({"NEO4J_URI": "neo4j+s://db:7687"}).neo4j.tls
    assert not Settings.from_env({}).neo4j.tls
    with pytest.raises(ValueError, match="NEO4J_CA_FILE goes with a bolt:// or neo4j:// URI"):
        Settings.from_env({"NEO4J_URI": "neo4j+s://db", "NEO4J_CA_FILE": "ca.crt"})


def test_replication_defaults_to_one_copy_of_everything() -> None:
    """One broker and one Qdrant: what `make run` starts."""
    settings = Settings.from_env({})
    assert (settings.kafka.replication_factor, settings.kafka.min_insync_replicas) == (1, 1)
    qdrant = settings.qdrant
    assert (qdrant.shards, qdrant.replication_factor, qdrant.write_consistency) == (1, 1, 1)


def test_replication_comes_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "KAFKA_REPLICATION_FACTOR": "3",
            "KAFKA_MIN_INSYNC_REPLICAS": "2",
            "QDRANT_SHARDS": "2",
            "QDRANT_REPLICATION_FACTOR": "2",
            "QDRANT_WRITE_CONSISTENCY": "1",
        }
    )
    assert (settings.kafka.replication_factor, settings.kafka.min_insync_replicas) == (3, 2)
    qdrant = settings.qdrant
    assert (qdrant.shards, qdrant.replication_factor, qdrant.write_consistency) == (2, 2, 1)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"KAFKA_REPLICATION_FACTOR": "0"}, "KAFKA_REPLICATION_FACTOR must be at least 1"),
        ({"KAFKA_MIN_INSYNC_REPLICAS": "2"}, "KAFKA_MIN_INSYNC_REPLICAS must be from 1 to"),
        ({"QDRANT_SHARDS": "0"}, "QDRANT_SHARDS must be at least 1"),
        ({"QDRANT_REPLICATION_FACTOR": "0"}, "QDRANT_REPLICATION_FACTOR must be at least 1"),
        ({"QDRANT_WRITE_CONSISTENCY": "3"}, "QDRANT_WRITE_CONSISTENCY must be from 1 to"),
    ],
)
def test_replication_that_cannot_work_is_refused_naming_the_setting(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        Settings.from_env(env)
