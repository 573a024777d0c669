import argparse
import json
import stat
from pathlib import Path

import pytest

from core.settings import Settings
from tests.unit.tools.stack.test_stack import SleepService
from tools.stack import services
from tools.stack.__main__ import wants_secure
from tools.stack.credentials import Credentials
from tools.stack.env_file import write_env_file
from tools.stack.local import LocalStack, StackError, recorded_profile
from tools.stack.secure import ENV_HEADER, SecureProfile
from tools.stack.services import KafkaBroker, Neo4jServer, PrepareError, QdrantServer

CLIENT_KEYS = {
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD_FILE",
    "KAFKA_SSL_CA_FILE",
    "NEO4J_URI",
    "NEO4J_USER",
    "NEO4J_PASSWORD_FILE",
    "NEO4J_CA_FILE",
}
QDRANT_KEYS = {"QDRANT_URL", "QDRANT_API_KEY_FILE", "QDRANT_CA_FILE"}


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> SecureProfile:
    prepared = SecureProfile(tmp_path_factory.mktemp("stack"))
    prepared.prepare()
    return prepared


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def secret_values(profile: SecureProfile) -> list[str]:
    return [path.read_text() for path in profile.credentials.files()]


def test_secrets_are_random_private_files_made_once(tmp_path: Path) -> None:
    credentials = Credentials(tmp_path / "secrets").ensure()
    values = [path.read_text() for path in credentials.files()]
    assert len(set(values)) == len(values) and all(len(v) >= 32 for v in values)
    assert all(mode(path) == 0o600 for path in credentials.files())
    assert mode(credentials.folder) == 0o700
    assert [path.read_text() for path in credentials.ensure().files()] == values


def test_the_client_env_names_the_secrets_by_file_only(profile: SecureProfile) -> None:
    env = profile.client_env("127.0.0.1:19392", "bolt://127.0.0.1:19687", None)
    assert set(env) == CLIENT_KEYS
    with_qdrant = profile.client_env("h:1", "bolt://h:2", "https://127.0.0.1:19333")
    assert set(with_qdrant) == CLIENT_KEYS | QDRANT_KEYS
    assert (env["KAFKA_SECURITY_PROTOCOL"], env["KAFKA_SASL_MECHANISM"]) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
    )
    text = write_env_file(profile.root / "secure.env", with_qdrant, ENV_HEADER).read_text()
    for value in secret_values(profile):
        assert value not in text


def test_the_client_env_reads_back_as_the_profiles_settings(profile: SecureProfile) -> None:
    """What clients are told and what the stack's own checks use are one thing."""
    env = profile.client_env("127.0.0.1:19392", "bolt://127.0.0.1:19687", "https://127.0.0.1:1")
    settings = Settings.from_env(env)
    assert settings.kafka.security == profile.kafka_security()
    assert settings.neo4j == profile.neo4j_settings("bolt://127.0.0.1:19687")
    qdrant = profile.qdrant_settings("https://127.0.0.1:1")
    assert (settings.qdrant.url, settings.qdrant.api_key, settings.qdrant.ca_file) == (
        qdrant.url,
        qdrant.api_key,
        qdrant.ca_file,
    )
    assert settings.neo4j.auth is not None and settings.neo4j.auth[0] == "neo4j"


def test_the_stacks_client_env_follows_its_profile_and_qdrant(tmp_path: Path) -> None:
    env = {
        "DOCSTREAM_STACK_DIR": str(tmp_path),
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19392",
        "NEO4J_URI": "bolt://127.0.0.1:19687",
    }
    secure = LocalStack(Settings.from_env(env), env=env, secure=True).client_env()
    assert set(secure) == CLIENT_KEYS, "no Qdrant server of the stack's: no Qdrant settings"
    assert secure["NEO4J_URI"] == "bolt://127.0.0.1:19687"
    local = env | {"QDRANT_URL": "http://127.0.0.1:19333", "QDRANT_BIN": "/bin/true"}
    with_qdrant = LocalStack(Settings.from_env(local), env=local, secure=True).client_env()
    assert with_qdrant["QDRANT_URL"] == "https://127.0.0.1:19333", "the profile picks https"
    plain = LocalStack(Settings.from_env(local), env=local).client_env()
    assert plain == {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19392",
        "NEO4J_URI": "bolt://127.0.0.1:19687",
        "QDRANT_URL": "http://127.0.0.1:19333",
    }


PLAINTEXT_KAFKA = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:9093
listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093
advertised.listeners=PLAINTEXT://127.0.0.1:9092
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions=3
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
"""


def test_the_plaintext_profile_is_unchanged(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path, "127.0.0.1", 9092, 9093)
    assert broker.properties() == PLAINTEXT_KAFKA.format(data=tmp_path.resolve() / "data/kafka")
    assert broker.config == tmp_path / "conf" / "kafka.properties"
    neo4j = Neo4jServer(tmp_path, "127.0.0.1", 7687)
    command = neo4j.command("-Dmarker")
    assert command[-4:] == [
        "Neo4jLauncher",
        str(tmp_path.resolve() / "data/neo4j"),
        "127.0.0.1",
        "7687",
    ]
    qdrant = QdrantServer(tmp_path, "127.0.0.1", 6333, None)
    assert qdrant.address == "http://127.0.0.1:6333"
    assert "tls" not in qdrant.settings() and "api_key" not in qdrant.settings()["service"]


def test_the_secured_broker_listens_sasl_ssl_with_its_users(profile: SecureProfile) -> None:
    broker = KafkaBroker(profile.root, "127.0.0.1", 19392, 19393, security=profile)
    lines = broker.properties().splitlines()
    admin = profile.credentials.kafka_admin_password.read_text()
    client = profile.credentials.kafka_client_password.read_text()
    prefix = "listener.name.sasl_ssl"
    for line in [
        "listeners=SASL_SSL://127.0.0.1:19392,CONTROLLER://127.0.0.1:19393",
        "advertised.listeners=SASL_SSL://127.0.0.1:19392",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
        "inter.broker.listener.name=SASL_SSL",
        "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
        "sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN",
        f"{prefix}.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram."
        f'ScramLoginModule required username="admin" password="{admin}";',
        f"{prefix}.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram."
        "ScramLoginModule required;",
        f"{prefix}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain."
        f'PlainLoginModule required user_admin="{admin}" user_docstream="{client}";',
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={profile.pki.server_keystore}",
        f"ssl.truststore.location={profile.pki.ca}",
    ]:
        assert line in lines
    assert f"log.dirs={(profile.root / 'data' / 'kafka-secure').resolve()}" in lines
    assert broker.config.name == "kafka-secure.properties"


def test_the_secured_broker_is_formatted_with_its_users_through_a_private_file(
    profile: SecureProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = KafkaBroker(profile.root, "127.0.0.1", 19392, 19393, security=profile)
    seen: list[tuple[list[str], str, int]] = []

    def run_format(argv: list[str]) -> None:
        argfile = Path(argv[1].removeprefix("@"))
        seen.append((argv, argfile.read_text(), mode(argfile)))

    monkeypatch.setattr(services, "fetch_jars", lambda *_: None)
    monkeypatch.setattr(broker, "_run_format", run_format)
    broker.prepare()
    assert mode(broker.config) == 0o600, "its JAAS lines hold the passwords"
    [(argv, arguments, argfile_mode)] = seen
    assert argv[0] == "java" and len(argv) == 2, "no password on the command line"
    assert argfile_mode == 0o600 and not Path(argv[1][1:]).exists()
    client = profile.credentials.kafka_client_password.read_text()
    for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256"):
        assert f'"{mechanism}=[name=docstream,password={client}]"' in arguments
    assert '"kafka.tools.StorageTool"' in arguments and '"--add-scram"' in arguments


def test_a_secured_storage_of_other_passwords_is_refused(
    profile: SecureProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = KafkaBroker(profile.root, "127.0.0.1", 19392, 19393, security=profile)
    monkeypatch.setattr(services, "fetch_jars", lambda *_: None)
    broker.data.mkdir(parents=True, exist_ok=True)
    (broker.data / "meta.properties").write_text("formatted")
    broker.users_stamp.write_text("another digest")
    with pytest.raises(PrepareError, match="other SCRAM passwords"):
        broker.prepare()


def test_the_secured_neo4j_is_given_paths_never_the_password(profile: SecureProfile) -> None:
    server = Neo4jServer(profile.root, "127.0.0.1", 19687, security=profile)
    command = server.command("-Dmarker")
    launcher = command.index("Neo4jLauncher")
    assert command[launcher + 1 :] == [
        str((profile.root / "data" / "neo4j-secure").resolve()),
        "127.0.0.1",
        "19687",
        "--tls-cert",
        str(profile.pki.server_cert),
        "--tls-key",
        str(profile.pki.server_key),
        "--password-file",
        str(profile.credentials.neo4j_password),
    ]
    for value in secret_values(profile):
        assert value not in " ".join(command)


def test_the_secured_qdrant_has_tls_and_its_key_in_a_private_file(
    profile: SecureProfile,
) -> None:
    binary = profile.root / "qdrant"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    server = QdrantServer(profile.root, "127.0.0.1", 19333, binary, security=profile)
    server.prepare()
    config = json.loads(server.config.read_text())
    api_key = profile.credentials.qdrant_api_key.read_text()
    assert config["service"]["enable_tls"] is True and config["service"]["api_key"] == api_key
    assert config["tls"] == {
        "cert": str(profile.pki.server_cert),
        "key": str(profile.pki.server_key),
    }
    assert mode(server.config) == 0o600
    assert server.address == "https://127.0.0.1:19333"
    assert server.data.name == "qdrant-secure"
    assert api_key not in " ".join(server.command(server.marker(profile.root)))


def sleeping_stack(tmp_path: Path, *, secure: bool) -> LocalStack:
    stack = LocalStack(Settings(stack_dir=tmp_path), secure=secure)
    stack.services = [SleepService("kafka"), SleepService("neo4j")]
    return stack


def test_one_profile_never_starts_beside_the_other(tmp_path: Path) -> None:
    plain = sleeping_stack(tmp_path, secure=False)
    plain.up(log=False)  # the sleepers "answer": nothing is started
    service = plain.services[0]
    plain._process(service).start(service.command(plain._marker(service)))
    try:
        assert recorded_profile(tmp_path) == "plaintext"
        with pytest.raises(StackError, match=r"runs the plaintext profile \(kafka\)"):
            sleeping_stack(tmp_path, secure=True).up(log=False)
        assert not (tmp_path / "secure.env").exists()
    finally:
        assert sleeping_stack(tmp_path, secure=True).down() == ["kafka"], "down stops either"
    assert recorded_profile(tmp_path) is None
    secure = sleeping_stack(tmp_path, secure=True)
    secure.up(log=False)
    assert recorded_profile(tmp_path) == "secure"
    assert (tmp_path / "secure.env").exists() and (tmp_path / "tls" / "ca.crt").exists()


def test_the_command_line_follows_the_recorded_profile(tmp_path: Path) -> None:
    settings = Settings(stack_dir=tmp_path)

    def secure(action: str, flag: bool = False) -> bool:
        return wants_secure(argparse.Namespace(action=action, secure=flag), settings)

    assert not secure("status") and not secure("up") and secure("up", flag=True)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "profile").write_text("secure")
    assert secure("status") and secure("down") and secure("start")
    assert not secure("up"), "up is told, never guessed"
