"""Kafka security, turned from the settings (`KafkaSecurity`) into each client
library's terms, once: librdkafka's configuration for every client the
project builds (confluent-kafka), and an SSL context with SASL credentials for
the Faust app's aiokafka clients. No other module spells a security setting.

Secrets leave their `Secret` here and nowhere else: into the libraries'
configuration, which is never logged (librdkafka's own logging is off, see
core/kafka/config.py)."""

from __future__ import annotations

import ssl
from typing import Any

from core.settings import KafkaSecurity


def librdkafka_security(security: KafkaSecurity) -> dict[str, Any]:
    """librdkafka's settings for `security` (names as in its CONFIGURATION.md)."""
    config: dict[str, Any] = {"security.protocol": security.protocol.lower()}
    if security.sasl:
        config["sasl.mechanism"] = security.sasl_mechanism
        config["sasl.username"] = security.username
        config["sasl.password"] = security.password.reveal()
    if security.tls:
        if security.ca_file is not None:
            config["ssl.ca.location"] = str(security.ca_file)
        if security.cert_file is not None and security.key_file is not None:
            config["ssl.certificate.location"] = str(security.cert_file)
            config["ssl.key.location"] = str(security.key_file)
            if security.key_password:
                config["ssl.key.password"] = security.key_password.reveal()
    return config


def ssl_context(security: KafkaSecurity) -> ssl.SSLContext | None:
    """The TLS side for aiokafka (Faust): the CA (else the system's), the
    client certificate for mutual TLS, host names checked. None without TLS."""
    if not security.tls:
        return None
    context = ssl.create_default_context(
        cafile=str(security.ca_file) if security.ca_file is not None else None
    )
    if security.cert_file is not None and security.key_file is not None:
        context.load_cert_chain(
            str(security.cert_file),
            str(security.key_file),
            password=security.key_password.reveal() or None,
        )
    return context


def faust_credentials(security: KafkaSecurity) -> Any:
    """Faust's `broker_credentials`: SASL credentials (with the SSL context for
    SASL_SSL: Faust makes it SASL_PLAINTEXT without one), a bare SSL context
    for SSL, None for PLAINTEXT. (`faust.SSLCredentials(cafile=…)` is not used:
    in faust-streaming 0.15 it fails without an explicit purpose.)"""
    import faust

    context = ssl_context(security)
    if security.sasl:
        return faust.SASLCredentials(
            username=security.username,
            password=security.password.reveal(),
            mechanism=security.sasl_mechanism,
            ssl_context=context,
        )
    return context
