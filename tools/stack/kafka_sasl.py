"""The secured broker's side of Kafka security: its SASL_SSL listener (SCRAM-SHA-512,
SCRAM-SHA-256 and PLAIN), the JAAS lines that hold its users, its TLS in PEM
files, and its SCRAM users, which in KRaft are written into the metadata when
the storage is formatted (`StorageTool format --add-scram`), before the first
start. The controller listener stays PLAINTEXT on 127.0.0.1: on one node it
carries only the node's talk with itself."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tools.stack.credentials import KAFKA_ADMIN_USER, KAFKA_CLIENT_USER, read_secret
from tools.stack.private_files import write_private
from tools.stack.secure import SecureProfile

LISTENER = "SASL_SSL"
ENABLED_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
SCRAM_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")
INTER_BROKER_MECHANISM = "SCRAM-SHA-512"
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"
PLAIN_LOGIN = "org.apache.kafka.common.security.plain.PlainLoginModule"


def users(profile: SecureProfile) -> dict[str, str]:
    """Each SASL user and its password."""
    files = profile.credentials
    return {
        KAFKA_ADMIN_USER: read_secret(files.kafka_admin_password).reveal(),
        KAFKA_CLIENT_USER: read_secret(files.kafka_client_password).reveal(),
    }


def listener_lines(host: str, port: int, controller_port: int, profile: SecureProfile) -> list[str]:
    """server.properties lines: the listeners, SASL and TLS. They hold the
    passwords (JAAS), so the file they go into is written mode 0600."""
    accounts = users(profile)
    admin = accounts[KAFKA_ADMIN_USER]
    plain_users = " ".join(f'user_{name}="{password}"' for name, password in accounts.items())
    prefix = f"listener.name.{LISTENER.lower()}"
    return [
        f"listeners={LISTENER}://{host}:{port},CONTROLLER://{host}:{controller_port}",
        f"advertised.listeners={LISTENER}://{host}:{port}",
        "controller.listener.names=CONTROLLER",
        f"listener.security.protocol.map=CONTROLLER:PLAINTEXT,{LISTENER}:{LISTENER}",
        f"inter.broker.listener.name={LISTENER}",
        f"sasl.mechanism.inter.broker.protocol={INTER_BROKER_MECHANISM}",
        f"sasl.enabled.mechanisms={','.join(ENABLED_MECHANISMS)}",
        # One JAAS line per mechanism. The inter-broker one also carries the
        # broker's own login (the admin SCRAM user); PLAIN's users live in its line.
        f"{prefix}.scram-sha-512.sasl.jaas.config={SCRAM_LOGIN} required "
        f'username="{KAFKA_ADMIN_USER}" password="{admin}";',
        f"{prefix}.scram-sha-256.sasl.jaas.config={SCRAM_LOGIN} required;",
        f"{prefix}.plain.sasl.jaas.config={PLAIN_LOGIN} required {plain_users};",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={profile.pki.server_keystore}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={profile.pki.ca}",
        # A client may present a certificate (the stack's client.crt): it must
        # then be the CA's. SASL authenticates either way.
        "ssl.client.auth=requested",
    ]


def scram_arguments(profile: SecureProfile) -> list[str]:
    """StorageTool's `--add-scram` options: every user under both SCRAM mechanisms."""
    return [
        argument
        for name, password in users(profile).items()
        for mechanism in SCRAM_MECHANISMS
        for argument in ("--add-scram", f"{mechanism}=[name={name},password={password}]")
    ]


def users_digest(profile: SecureProfile) -> str:
    """What a formatted storage's SCRAM users were made from, as a digest: a
    storage formatted with other passwords would refuse every client."""
    accounts = users(profile)
    text = "\n".join(f"{name}:{accounts[name]}" for name in sorted(accounts))
    return hashlib.sha256(text.encode()).hexdigest()


@contextmanager
def java_argfile(path: Path, arguments: list[str]) -> Iterator[str]:
    """`@path` for a `java` command line: the JVM reads its arguments (here,
    passwords) from that file, mode 0600, so `ps` shows only `java @path`.
    The file is removed afterwards."""
    for argument in arguments:
        if '"' in argument or "\\" in argument:
            raise ValueError("a java argument file argument holds a quote or a backslash")
    write_private(path, "".join(f'"{argument}"\n' for argument in arguments))
    try:
        yield f"@{path}"
    finally:
        path.unlink(missing_ok=True)
