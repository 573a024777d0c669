"""What `diagnose` makes of librdkafka's errors and log lines: the setting to
fix for each misconfiguration, and nothing for a broker that is only down.
(The real failures, against a secured broker, are in
tests/integration/test_secured.py.)"""

from __future__ import annotations

from confluent_kafka import KafkaError

from core.kafka.connect import diagnose, nothing_listens, verdict_of
from core.settings import KafkaSecurity, KafkaSettings, Secret

SASL = KafkaSettings(
    bootstrap_servers="b:9093",
    security=KafkaSecurity(protocol="SASL_SSL", username="alice", password=Secret("pw")),
)
PLAIN = KafkaSettings(bootstrap_servers="b:9093")


def error(code: int, text: str) -> KafkaError:
    return KafkaError(code, text)


def test_a_refused_password_names_the_credentials_settings_and_not_the_password() -> None:
    verdict = verdict_of(
        SASL,
        [error(KafkaError._AUTHENTICATION, "SASL authentication error: Authentication failed")],
        [],
    )
    assert verdict is not None
    assert "KAFKA_SASL_PASSWORD" in verdict and "SCRAM-SHA-512 as alice" in verdict
    assert "pw" not in verdict.replace("PASSWORD", "")


def test_an_untrusted_certificate_names_the_ca_setting() -> None:
    text = "SSL handshake failed: error:0A000086:SSL routines::certificate verify failed"
    verdict = verdict_of(SASL, [error(KafkaError._SSL, text)], [])
    assert verdict is not None and "KAFKA_SSL_CA_FILE" in verdict
    assert "no CA the system trusts signed" in verdict


def test_plaintext_against_a_tls_listener_names_the_protocol_setting() -> None:
    line = (
        "FAIL ... Disconnected while requesting ApiVersion: might be caused by incorrect "
        "security.protocol configuration (connecting to a SSL listener?) (after 0ms in state "
        "APIVERSION_QUERY)"
    )
    down = [error(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down")]
    assert verdict_of(PLAIN, down, [line]) is None, "one dropped request: a broker going away"
    verdict = verdict_of(PLAIN, down, [line] * 3)
    assert verdict is not None and "KAFKA_SECURITY_PROTOCOL" in verdict and "PLAINTEXT" in verdict


def test_tls_against_a_plaintext_listener_names_the_protocol_setting() -> None:
    text = "SSL handshake failed: Disconnected: connecting to a PLAINTEXT broker listener?"
    verdict = verdict_of(SASL, [error(KafkaError._TRANSPORT, text)], [])
    assert verdict is not None and "does not speak TLS" in verdict


def test_sasl_against_a_listener_without_it_or_with_other_mechanisms() -> None:
    failed = "SASL SCRAM-SHA-512 mechanism handshake failed: Broker: "
    none = f"{failed}Request not valid in current SASL state: broker's supported mechanisms:  (…)"
    other = f"{failed}Unsupported SASL mechanism: broker's supported mechanisms: PLAIN (…)"
    assert "takes no SASL" in (
        verdict_of(SASL, [error(KafkaError._AUTHENTICATION, none)], []) or ""
    )
    assert "offers SASL PLAIN" in (
        verdict_of(SASL, [error(KafkaError._AUTHENTICATION, other)], []) or ""
    )


def test_a_broker_that_is_only_down_is_no_misconfiguration() -> None:
    down = [error(KafkaError._TRANSPORT, "Connect to ipv4#127.0.0.1:9 failed: Connection refused")]
    assert verdict_of(PLAIN, down, []) is None
    assert nothing_listens(down), "a refused port ends the look early: nothing to diagnose"
    assert not nothing_listens([error(KafkaError._SSL, "certificate verify failed")])
    assert diagnose(KafkaSettings(bootstrap_servers="127.0.0.1:9"), timeout_s=10) is None
