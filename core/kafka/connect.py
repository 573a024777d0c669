"""Can this process reach Kafka as it is configured? Asked once, before a
command or a worker starts, so that a setting that can never work (a wrong
password, a CA that does not sign the broker's certificate, plaintext against
a TLS listener) ends the start at once with a message naming the setting to
fix, instead of a client that retries forever.

librdkafka treats all of these as transient and retries: its error callback
reports `_AUTHENTICATION` and `_SSL` within a second, and a client speaking
plaintext to a TLS or SASL listener only sees the broker drop the connection
during the first request (its log says "in state APIVERSION_QUERY"). A broker
that simply does not answer yet is not a misconfiguration: `diagnose` returns
None for it, and the callers wait for Kafka as they always have."""

from __future__ import annotations

import threading
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from core.kafka.config import client_config
from core.settings import KafkaSecurity, KafkaSettings

# librdkafka's log line when the broker closed the connection during the
# first request: a listener that wants TLS or SASL, spoken to without.
_HANDSHAKE_DROPPED = ("APIVERSION_QUERY", "might be caused by incorrect security.protocol")
POLL_S = 0.25
# A port where nothing listens is a broker not started yet, not a protocol
# mismatch: after this long with only refusals, there is nothing to diagnose.
REFUSED_S = 1.0
# How many first requests the broker must have cut off before that says "wrong
# protocol" rather than "broker going away".
HANDSHAKES_DROPPED = 3


class _Seen:
    """What librdkafka reported while we asked: its errors and log lines.
    (Its own threads call in, hence the lock.)"""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.errors: list[KafkaError] = []
        self.logs: list[str] = []

    def error(self, error: KafkaError) -> None:
        with self.lock:
            self.errors.append(error)

    def log(self, _level: int, fmt: str, *args: Any, **_: Any) -> None:
        """Called as a `logging.Logger.log`: kept, never printed (it may name
        configuration; the verdict below says what matters)."""
        with self.lock:
            self.logs.append(fmt % args if args else fmt)


def diagnose(kafka: KafkaSettings, timeout_s: float = 10.0) -> str | None:
    """A sentence naming the setting to fix when Kafka refuses this client's
    security, or None when Kafka answered (or merely did not answer yet)."""
    seen = _Seen()
    admin = AdminClient(
        client_config(
            kafka,
            error_cb=seen.error,
            logger=seen,
            log_level=6,  # the dropped handshake is told at "info"
            **{"socket.connection.setup.timeout.ms": int(timeout_s * 1000)},
        )
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if admin.list_topics(timeout=POLL_S).brokers:
                return None
        except KafkaException:
            pass  # the callbacks below say why
        admin.poll(0)
        with seen.lock:
            verdict = verdict_of(kafka, seen.errors, seen.logs)
            refused = nothing_listens(seen.errors)
        if verdict is not None:
            return verdict
        if refused and time.monotonic() > deadline - timeout_s + REFUSED_S:
            return None  # nothing listens there yet: not a setting's fault
    return None


def nothing_listens(errors: list[KafkaError]) -> bool:
    """The port refused the connection: a broker not started yet."""
    return any("Connection refused" in error.str() for error in errors)


def verdict_of(kafka: KafkaSettings, errors: list[KafkaError], logs: list[str]) -> str | None:
    """The misconfiguration these errors and log lines show, if any."""
    security = kafka.security
    where = f"the Kafka broker at {kafka.bootstrap_servers}"
    protocol = f"set KAFKA_SECURITY_PROTOCOL to the listener's (now {security.protocol})"
    texts = [error.str() for error in errors] + logs
    if any("connecting to a PLAINTEXT broker listener" in text for text in texts):
        return f"{where} does not speak TLS on that port: {protocol}"
    # A broker going down drops a connection or two as well: a listener that
    # wants another protocol drops every one, within milliseconds.
    dropped = sum(any(mark in text for mark in _HANDSHAKE_DROPPED) for text in texts)
    if dropped >= HANDSHAKES_DROPPED:
        return (
            f"{where} closed the connection during the first request: its listener wants "
            f"TLS or SASL: {protocol}"
        )
    for error in errors:
        if error.code() == KafkaError._AUTHENTICATION:
            return _sasl(kafka, security, error.str())
        if error.code() == KafkaError._SSL:
            return _tls(kafka, security, error.str())
    return None


def _sasl(kafka: KafkaSettings, security: KafkaSecurity, detail: str) -> str:
    where = f"the Kafka broker at {kafka.bootstrap_servers}"
    offered = detail.partition("supported mechanisms:")[2].split("(")[0].strip()
    if "mechanism handshake failed" in detail and not offered:
        return (
            f"{where} takes no SASL on that port: set KAFKA_SECURITY_PROTOCOL to the "
            f"listener's (now {security.protocol})"
        )
    if "mechanism handshake failed" in detail:
        return (
            f"{where} offers SASL {offered}, not {security.sasl_mechanism}: set "
            "KAFKA_SASL_MECHANISM to one of them"
        )
    return _credentials(kafka, security)


def _credentials(kafka: KafkaSettings, security: KafkaSecurity) -> str:
    return (
        f"Kafka at {kafka.bootstrap_servers} refused the credentials ({security.sasl_mechanism} "
        f"as {security.username or 'nobody'}): check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD "
        "(or KAFKA_SASL_PASSWORD_FILE) and KAFKA_SASL_MECHANISM"
    )


def _tls(kafka: KafkaSettings, security: KafkaSecurity, detail: str) -> str:
    where = f"the Kafka broker at {kafka.bootstrap_servers}"
    if "certificate verify failed" in detail:
        signer = (
            f"the CA in {security.ca_file} did not sign"
            if security.ca_file
            else "no CA the system trusts signed"
        )
        return (
            f"{where} presented a certificate that {signer} (or one for another host name): "
            "set KAFKA_SSL_CA_FILE to the CA that signed it"
        )
    if "wrong version number" in detail or "packet length too long" in detail:
        return (
            f"{where} does not speak TLS on that port: set KAFKA_SECURITY_PROTOCOL to the "
            f"listener's (now {security.protocol})"
        )
    return (
        f"TLS with {where} failed ({_first_line(detail)}): check KAFKA_SSL_CA_FILE, and "
        "KAFKA_SSL_CERT_FILE with KAFKA_SSL_KEY_FILE where the broker wants a client certificate"
    )


def _first_line(text: str) -> str:
    return text.splitlines()[0][:200] if text else "no detail"
