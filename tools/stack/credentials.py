"""The secured stack's passwords and API key: random, made once per stack
folder (`<stack>/secrets`), each in its own file of mode 0600 and read back as
a `Secret`. Clients are given the files' paths (the *_FILE variables), never
their content."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from core.settings import Secret
from tools.stack.private_files import private_folder, write_private

# The broker's own SCRAM user (inter-broker) and the one docstream's clients use.
KAFKA_ADMIN_USER = "admin"
KAFKA_CLIENT_USER = "docstream"
# Neo4j's built-in administrator: the launcher sets its password at each start.
NEO4J_USER = "neo4j"


@dataclass(frozen=True)
class Credentials:
    folder: Path

    @property
    def kafka_admin_password(self) -> Path:
        return self.folder / "kafka-admin.password"

    @property
    def kafka_client_password(self) -> Path:
        return self.folder / "kafka-client.password"

    @property
    def neo4j_password(self) -> Path:
        return self.folder / "neo4j.password"

    @property
    def qdrant_api_key(self) -> Path:
        return self.folder / "qdrant.api-key"

    def files(self) -> tuple[Path, ...]:
        return (
            self.kafka_admin_password,
            self.kafka_client_password,
            self.neo4j_password,
            self.qdrant_api_key,
        )

    def ensure(self) -> Credentials:
        """Make the missing ones; an existing file is kept as it is."""
        private_folder(self.folder)
        for path in self.files():
            if not path.is_file():
                write_private(path, new_secret())
        return self


def new_secret() -> str:
    """192 random bits, URL-safe: letters, digits, '-' and '_' only, so a value
    sits unquoted in a JAAS string and in StorageTool's `[name=…,password=…]`,
    where a quote, a comma or a bracket would end it."""
    return secrets.token_urlsafe(24)


def read_secret(path: Path) -> Secret:
    """The file's content (as the settings read a *_FILE: one trailing newline dropped)."""
    text = path.read_text(encoding="utf-8")
    return Secret(text[:-1] if text.endswith("\n") else text)
