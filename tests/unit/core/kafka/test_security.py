"""Kafka security, from the settings into each client library's terms
(core/kafka/security.py), and into every client through core/kafka/config.py."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest
from confluent_kafka import Producer

from core.kafka.config import client_config, consumer_config, faust_settings, producer_config
from core.kafka.security import faust_credentials, librdkafka_security, ssl_context
from core.settings import KafkaSecurity, KafkaSettings, Secret
from tools.stack.certs import make_certificates

SCRAM = KafkaSecurity(
    protocol="SASL_SSL",
    sasl_mechanism="SCRAM-SHA-256",
    username="docstream",
    password=Secret("s3cret-pw"),
)


def test_plaintext_says_so_and_nothing_else() -> None:
    assert librdkafka_security(KafkaSecurity()) == {"security.protocol": "plaintext"}
    assert ssl_context(KafkaSecurity()) is None
    assert faust_credentials(KafkaSecurity()) is None
    assert "broker_credentials" not in faust_settings(KafkaSettings())


def test_sasl_ssl_with_scram_and_a_ca_reaches_every_client_config(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    security = KafkaSecurity(**{**vars_of(SCRAM), "ca_file": ca})
    kafka = KafkaSettings(bootstrap_servers="b:9093", security=security)
    expected = {
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "docstream",
        "sasl.password": "s3cret-pw",
        "ssl.ca.location": str(ca),
    }
    for config in (client_config(kafka), producer_config(kafka), consumer_config(kafka, "g")):
        assert expected.items() <= config.items()
        assert config["log_level"] == 0, "librdkafka's log could echo its configuration"


def test_mutual_tls_adds_the_client_certificate_and_its_key_password(tmp_path: Path) -> None:
    security = KafkaSecurity(
        protocol="SSL",
        ca_file=tmp_path / "ca.crt",
        cert_file=tmp_path / "client.crt",
        key_file=tmp_path / "client.key",
        key_password=Secret("kp"),
    )
    config = librdkafka_security(security)
    assert config["ssl.certificate.location"] == str(tmp_path / "client.crt")
    assert config["ssl.key.location"] == str(tmp_path / "client.key")
    assert config["ssl.key.password"] == "kp"
    assert "sasl.mechanism" not in config


def scram_with_certificates(folder: Path) -> KafkaSecurity:
    """SCRAM over TLS with a real CA and a client certificate for mutual TLS."""
    certs = make_certificates(folder)
    return KafkaSecurity(
        **{
            **vars_of(SCRAM),
            "ca_file": certs.ca,
            "cert_file": certs.client_cert,
            "key_file": certs.client_key,
        }
    )


def test_librdkafka_accepts_every_key_and_value(tmp_path: Path) -> None:
    security = scram_with_certificates(tmp_path)
    Producer(producer_config(KafkaSettings(security=security)))  # raises on an unknown key


def test_faust_gets_sasl_over_tls_with_the_ca_and_the_client_certificate(tmp_path: Path) -> None:
    security = scram_with_certificates(tmp_path)
    credentials = faust_credentials(security)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL", "without a context Faust says SASL_PLAINTEXT"
    assert credentials.mechanism.value == "SCRAM-SHA-256"
    assert (credentials.username, credentials.password) == ("docstream", "s3cret-pw")
    assert "s3cret-pw" not in repr(credentials)
    context = credentials.ssl_context
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert faust_settings(KafkaSettings(security=security))["broker_credentials"] is not None


def test_ssl_without_sasl_gives_faust_a_bare_context(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path)
    assert isinstance(
        faust_credentials(KafkaSecurity(protocol="SSL", ca_file=certs.ca)), ssl.SSLContext
    )


@pytest.mark.parametrize(
    ("security", "says"),
    [
        (lambda: KafkaSecurity(protocol="TLS"), "KAFKA_SECURITY_PROTOCOL must be one of"),
        (lambda: KafkaSecurity(protocol="SASL_SSL"), "needs KAFKA_SASL_USERNAME"),
        (
            lambda: KafkaSecurity(
                protocol="SASL_SSL", sasl_mechanism="GSSAPI", username="u", password=Secret("p")
            ),
            "KAFKA_SASL_MECHANISM must be one of",
        ),
        (lambda: KafkaSecurity(protocol="SSL", cert_file=Path("c")), "needs both"),
        (lambda: KafkaSecurity(ca_file=Path("ca")), "has no TLS"),
    ],
)
def test_settings_that_cannot_work_are_refused_by_name(security: object, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        security()  # type: ignore[operator]


def vars_of(security: KafkaSecurity) -> dict[str, object]:
    return {name: getattr(security, name) for name in security.__dataclass_fields__}
