"""The secured profile of the local stack (`python -m tools.stack up --secure`):
Kafka behind a SASL_SSL listener (SCRAM), Neo4j with Bolt TLS required and
auth on, and the stack's Qdrant server (when QDRANT_URL names this machine)
over TLS with an API key.

What the services share lives here: the throwaway PKI of `certs.py` under
`<stack>/tls`, the secrets of `credentials.py` under `<stack>/secrets`, and the
client settings that reach them, as docstream's settings (`kafka_security`,
`neo4j_settings`, `qdrant_settings`: the services' own readiness checks use
them) and as environment variables (`client_env`, written to
`<stack>/secure.env`). The variables name the secrets by *_FILE only, so that
file holds no secret.

Schemes: the stack takes hosts and ports from KAFKA_BOOTSTRAP_SERVERS,
NEO4J_URI and QDRANT_URL and ignores their schemes; the profile decides them.
So QDRANT_URL may say http:// (as for the plaintext stack) or https:// (as
secure.env does): the secured Qdrant serves https on that port either way,
and `client_env` tells clients https://."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.settings import KafkaSecurity, Neo4jSettings, QdrantSettings
from tools.stack.certs import Pki
from tools.stack.credentials import KAFKA_CLIENT_USER, NEO4J_USER, Credentials, read_secret

ENV_HEADER = "The secured local stack's client settings (python -m tools.stack up --secure)."
PROTOCOL = "SASL_SSL"
# What docstream's clients use; the broker also takes SCRAM-SHA-256 and PLAIN.
CLIENT_MECHANISM = "SCRAM-SHA-512"


@dataclass(frozen=True)
class SecureProfile:
    root: Path  # the stack folder

    @property
    def pki(self) -> Pki:
        return Pki(self.root / "tls")

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.root / "secrets")

    @property
    def env_file(self) -> Path:
        return self.root / "secure.env"

    def prepare(self) -> None:
        """The certificates and secrets, made if missing, kept if present."""
        self.pki.ensure()
        self.credentials.ensure()

    def kafka_security(self) -> KafkaSecurity:
        return KafkaSecurity(
            protocol=PROTOCOL,
            sasl_mechanism=CLIENT_MECHANISM,
            username=KAFKA_CLIENT_USER,
            password=read_secret(self.credentials.kafka_client_password),
            ca_file=self.pki.ca,
        )

    def neo4j_settings(self, uri: str) -> Neo4jSettings:
        return Neo4jSettings(
            uri=uri,
            user=NEO4J_USER,
            password=read_secret(self.credentials.neo4j_password),
            ca_file=self.pki.ca,
        )

    def qdrant_settings(self, url: str) -> QdrantSettings:
        return QdrantSettings(
            url=url,
            api_key=read_secret(self.credentials.qdrant_api_key),
            ca_file=self.pki.ca,
        )

    def client_env(
        self, kafka_address: str, neo4j_uri: str, qdrant_url: str | None
    ) -> dict[str, str]:
        """The environment a docstream client needs to reach the secured stack.
        `qdrant_url` is the stack's Qdrant server, None when it has none."""
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_address,
            "KAFKA_SECURITY_PROTOCOL": PROTOCOL,
            "KAFKA_SASL_MECHANISM": CLIENT_MECHANISM,
            "KAFKA_SASL_USERNAME": KAFKA_CLIENT_USER,
            "KAFKA_SASL_PASSWORD_FILE": str(self.credentials.kafka_client_password),
            "KAFKA_SSL_CA_FILE": str(self.pki.ca),
            "NEO4J_URI": neo4j_uri,
            "NEO4J_USER": NEO4J_USER,
            "NEO4J_PASSWORD_FILE": str(self.credentials.neo4j_password),
            "NEO4J_CA_FILE": str(self.pki.ca),
        }
        if qdrant_url is not None:
            env |= {
                "QDRANT_URL": qdrant_url,
                "QDRANT_API_KEY_FILE": str(self.credentials.qdrant_api_key),
                "QDRANT_CA_FILE": str(self.pki.ca),
            }
        return env
