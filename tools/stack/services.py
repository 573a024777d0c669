"""The services of the local stack: Kafka and Neo4j (JVM processes from Maven
artifacts) and, when QDRANT_URL names this machine, a Qdrant server (a binary
the user brings). Each knows how to prepare its files, the command that runs
it, the marker that tells its process from any other, and how to ask it (with
a real client) if it is ready.

Each takes an optional `SecureProfile` (tools/stack/secure.py): with it the
service runs secured, from data folders of its own (`<name>-secure`), so that
switching profiles never mixes a secured store with a plaintext one."""

from __future__ import annotations

import base64
import json
import os
import ssl
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from core.settings import KafkaSecurity, KafkaSettings, Neo4jSettings
from tools.stack import kafka_sasl
from tools.stack.credentials import read_secret
from tools.stack.maven import compile_launcher, fetch_jars
from tools.stack.private_files import write_private
from tools.stack.secure import SecureProfile

# The JVM flags Neo4j's own neo4j.conf ships with (server.jvm.additional).
NEO4J_JVM_FLAGS = [
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+DisableExplicitGC",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dlog4j2.disable.jmx=true",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
]

KAFKA_LOG4J = """\
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File={log}
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
"""


class Service(Protocol):
    name: str

    def prepare(self) -> None: ...

    def marker(self, stack_root: Path) -> str:
        """A string only this service's command line contains."""
        ...

    def command(self, marker: str) -> list[str]: ...

    def ready(self) -> bool: ...

    @property
    def address(self) -> str: ...


class PrepareError(RuntimeError):
    """A service cannot be prepared; the message says what to do."""


def jvm_marker(stack_root: Path, name: str) -> str:
    """A system property that the JVM ignores and `ps` shows. The same in both
    profiles: `down` stops a service whichever profile started it."""
    return f"-Ddocstream.stack={stack_root}/{name}"


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, base64url without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def data_folder(root: Path, name: str, security: SecureProfile | None) -> Path:
    return root / "data" / (f"{name}-secure" if security is not None else name)


@dataclass(frozen=True)
class KafkaQuorum:
    """The brokers of a cluster, each also a controller (KRaft's combined
    mode): who votes, and what the cluster's own topics and defaults need."""

    controllers: tuple[tuple[int, int], ...]  # (node id, controller port) of each voter
    cluster_id: str  # every node formats its storage with the same one
    replicas: int  # of internal topics and of topics created without a factor
    min_insync: int

    def voters(self, host: str) -> str:
        return ",".join(f"{node}@{host}:{port}" for node, port in self.controllers)


@dataclass
class KafkaBroker:
    """Kafka 3.9 in KRaft mode, a node that is both broker and controller:
    alone (the default), or one of a `quorum`."""

    root: Path  # the stack folder
    host: str
    port: int
    controller_port: int
    name: str = "kafka"
    security: SecureProfile | None = None
    node_id: int = 1
    quorum: KafkaQuorum | None = None
    lib_root: Path | None = None  # where its jars are, when not under `root`

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def lib(self) -> Path:
        return (self.lib_root or self.root) / "lib" / "kafka"

    def marker(self, stack_root: Path) -> str:
        return jvm_marker(stack_root, self.name)

    @property
    def data(self) -> Path:
        return data_folder(self.root, self.name, self.security)

    @property
    def config(self) -> Path:
        suffix = "-secure" if self.security is not None else ""
        return self.root / "conf" / f"{self.name}{suffix}.properties"

    @property
    def log4j(self) -> Path:
        return self.root / "conf" / f"{self.name}-log4j.properties"

    @property
    def users_stamp(self) -> Path:
        """Beside the secured storage: the digest of the users it was formatted with."""
        return self.data.with_name(f"{self.data.name}.users")

    def properties(self) -> str:
        quorum = self.quorum
        voters = quorum.voters(self.host) if quorum else f"1@{self.host}:{self.controller_port}"
        # One node: every internal topic has one replica. A quorum's have its factor.
        replicas, min_insync = (quorum.replicas, quorum.min_insync) if quorum else (1, 1)
        return "\n".join(
            [
                "process.roles=broker,controller",
                f"node.id={self.node_id}",
                f"controller.quorum.voters={voters}",
                *self._listener_lines(),
                f"log.dirs={self.data.resolve()}",
                "num.partitions=3",
                f"offsets.topic.replication.factor={replicas}",
                f"transaction.state.log.replication.factor={replicas}",
                f"transaction.state.log.min.isr={min_insync}",
                # Topics made without a factor (Faust's changelogs) as docstream's.
                *(
                    [f"default.replication.factor={replicas}", f"min.insync.replicas={min_insync}"]
                    if quorum
                    else []
                ),
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=true",
                "",
            ]
        )

    def _listener_lines(self) -> list[str]:
        if self.security is not None:
            return kafka_sasl.listener_lines(
                self.host, self.port, self.controller_port, self.security
            )
        return [
            f"listeners=PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
        ]

    def prepare(self) -> None:
        fetch_jars("kafka-pom.xml", self.lib)
        self.config.parent.mkdir(parents=True, exist_ok=True)
        if self.security is not None:
            write_private(self.config, self.properties())  # its JAAS lines hold passwords
        else:
            self.config.write_text(self.properties())
        self.log4j.write_text(
            KAFKA_LOG4J.format(log=(self.root / "logs" / f"{self.name}-server.log").resolve())
        )
        if not (self.data / "meta.properties").exists():
            self._format_storage()
        elif self.security is not None:
            self._check_users()

    def _format_storage(self) -> None:
        cluster_id = self.quorum.cluster_id if self.quorum else new_cluster_id()
        self.data.mkdir(parents=True, exist_ok=True)
        arguments = [
            "-cp",
            f"{self.lib}/*",
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(self.config),
        ]
        if self.security is None:
            self._run_format(["java", *arguments])
            return
        # The SCRAM users' passwords go in through an argument file, not argv.
        scram = kafka_sasl.scram_arguments(self.security)
        argfile = self.root / "conf" / "kafka-format.args"
        with kafka_sasl.java_argfile(argfile, [*arguments, *scram]) as read_from:
            self._run_format(["java", read_from])
        self.users_stamp.write_text(kafka_sasl.users_digest(self.security))

    def _run_format(self, argv: list[str]) -> None:
        import subprocess

        result = subprocess.run(argv, capture_output=True, text=True)
        if result.returncode != 0:
            raise PrepareError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")

    def _check_users(self) -> None:
        assert self.security is not None
        stamp = self.users_stamp.read_text() if self.users_stamp.exists() else ""
        if stamp != kafka_sasl.users_digest(self.security):
            raise PrepareError(
                f"the secured Kafka storage {self.data} was formatted with other SCRAM "
                f"passwords than those in {self.security.credentials.folder}: remove "
                f"{self.data} (its topics go with it) to format it again"
            )

    def command(self, marker: str) -> list[str]:
        log4j = self.log4j.resolve()
        return [
            "java",
            "-Xms256m",
            "-Xmx768m",
            "-XX:+UseG1GC",
            marker,
            f"-Dlog4j.configuration=file:{log4j}",
            "-cp",
            f"{self.lib.resolve()}/*",
            "kafka.Kafka",
            str(self.config.resolve()),
        ]

    def client_settings(self) -> KafkaSettings:
        """What a client of this broker uses: secured, the profile's client user."""
        security = self.security.kafka_security() if self.security else KafkaSecurity()
        return KafkaSettings(bootstrap_servers=self.address, security=security)

    def ready(self) -> bool:
        from core.kafka.admin import admin_client

        try:
            admin = admin_client(self.client_settings())
            brokers = admin.list_topics(timeout=1.0).brokers
        except Exception:
            return False
        # Alone: anything answering. In a quorum: this node, registered.
        return self.node_id in brokers if self.quorum else bool(brokers)


@dataclass
class Neo4jServer:
    """Neo4j 5 community, embedded in the project's launcher with Bolt switched on."""

    root: Path
    host: str
    port: int
    name: str = "neo4j"
    security: SecureProfile | None = None
    lib_root: Path | None = None  # where its jars and launcher are, when not under `root`

    @property
    def address(self) -> str:
        return f"bolt://{self.host}:{self.port}"

    @property
    def lib(self) -> Path:
        return (self.lib_root or self.root) / "lib" / "neo4j"

    def marker(self, stack_root: Path) -> str:
        return jvm_marker(stack_root, self.name)

    @property
    def launcher(self) -> Path:
        return (self.lib_root or self.root) / "lib" / "neo4j-launcher"

    @property
    def home(self) -> Path:
        return data_folder(self.root, self.name, self.security)

    def prepare(self) -> None:
        fetch_jars("neo4j-pom.xml", self.lib)
        compile_launcher("Neo4jLauncher.java", self.lib, self.launcher)
        self.home.mkdir(parents=True, exist_ok=True)

    def command(self, marker: str) -> list[str]:
        classpath = f"{self.lib.resolve()}/*:{self.launcher.resolve()}"
        home = self.home.resolve()
        return [
            "java",
            "-Xms256m",
            "-Xmx1g",
            marker,
            *NEO4J_JVM_FLAGS,
            "-cp",
            classpath,
            "Neo4jLauncher",
            str(home),
            self.host,
            str(self.port),
            *self._secure_arguments(),
        ]

    def _secure_arguments(self) -> list[str]:
        """Bolt TLS with the stack's server certificate, and auth on with the
        password the launcher reads from its file: a path, never the password."""
        if self.security is None:
            return []
        pki, credentials = self.security.pki, self.security.credentials
        return [
            "--tls-cert",
            str(pki.server_cert.resolve()),
            "--tls-key",
            str(pki.server_key.resolve()),
            "--password-file",
            str(credentials.neo4j_password.resolve()),
        ]

    def ready(self) -> bool:
        from neo4j import GraphDatabase

        from sinks.neo4j.store import trust_options

        try:
            # Plaintext: no auth (the server has none) and no TLS.
            settings = (
                self.security.neo4j_settings(self.address)
                if self.security is not None
                else Neo4jSettings(uri=self.address)
            )
            with (
                GraphDatabase.driver(
                    settings.uri,
                    auth=settings.auth,
                    **trust_options(settings),
                    connection_timeout=1.0,
                ) as driver,
                driver.session() as session,
            ):
                # An auto-commit query: one try, no driver-side retry loop.
                session.run("RETURN 1").consume()
            return True
        except Exception:
            return False


class QdrantBinaryMissing(PrepareError):
    """QDRANT_URL names this machine, but there is no server binary to start."""


@dataclass(frozen=True)
class QdrantPeer:
    """A node of a Qdrant cluster: its P2P port (loopback, like its other
    ports), and the P2P port of the peer it joins through (None: it is the
    first peer, which the others join)."""

    p2p_port: int
    bootstrap_port: int | None = None

    @property
    def first(self) -> bool:
        """The peer the others join through."""
        return self.bootstrap_port is None


@dataclass
class QdrantServer:
    """A Qdrant server from a binary the user brings (QDRANT_BIN, else `qdrant`
    on PATH): nothing is downloaded. Its configuration file lives under the
    stack's folder, and its path is the marker of the process."""

    root: Path
    host: str
    port: int  # HTTP; gRPC listens on the next port
    binary: Path | None
    name: str = "qdrant"
    security: SecureProfile | None = None
    peer: QdrantPeer | None = None  # set: one node of a cluster

    @property
    def address(self) -> str:
        scheme = "https" if self.security is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def data(self) -> Path:
        return data_folder(self.root, self.name, self.security)

    @property
    def config(self) -> Path:
        return self.root / "conf" / f"{self.name}.yaml"

    def marker(self, stack_root: Path) -> str:
        # One configuration file for both profiles: `down` finds either.
        return str(self.config.resolve())

    def settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "log_level": "INFO",
            "telemetry_disabled": True,
            "storage": {
                "storage_path": str((self.data / "storage").resolve()),
                "snapshots_path": str((self.data / "snapshots").resolve()),
            },
            "service": {"host": self.host, "http_port": self.port, "grpc_port": self.port + 1},
        }
        if self.peer is not None:
            settings["cluster"] = {"enabled": True, "p2p": {"port": self.peer.p2p_port}}
        if self.security is not None:
            # TLS on both ports (HTTP and gRPC) and the API key: in this file
            # (mode 0600), not in the command line or the environment.
            pki = self.security.pki
            api_key = read_secret(self.security.credentials.qdrant_api_key).reveal()
            settings["service"] |= {"enable_tls": True, "api_key": api_key}
            settings["tls"] = {
                "cert": str(pki.server_cert.resolve()),
                "key": str(pki.server_key.resolve()),
            }
        return settings

    def prepare(self) -> None:
        if self.binary is None:
            raise QdrantBinaryMissing(
                f"QDRANT_URL={self.address} names this machine, so the stack runs a Qdrant "
                "server there, but there is no binary: set QDRANT_BIN to a Qdrant server "
                "binary or put `qdrant` on PATH (or leave QDRANT_URL empty for the "
                "embedded engine)"
            )
        if not (self.binary.is_file() and os.access(self.binary, os.X_OK)):
            raise QdrantBinaryMissing(f"QDRANT_BIN={self.binary} is not an executable file")
        self.data.mkdir(parents=True, exist_ok=True)
        self.config.parent.mkdir(parents=True, exist_ok=True)
        # JSON is YAML: the server reads this file as its configuration.
        if self.security is not None:
            write_private(self.config, json.dumps(self.settings(), indent=2))
        else:
            self.config.write_text(json.dumps(self.settings(), indent=2))

    def command(self, marker: str) -> list[str]:
        assert self.binary is not None, "prepare() refuses a missing binary"
        command = [str(self.binary), "--config-path", marker]
        if self.peer is None:
            return command
        # The same command restarts a node: it finds the cluster in its storage.
        command += ["--uri", f"http://{self.host}:{self.peer.p2p_port}"]
        if self.peer.bootstrap_port is not None:
            command += ["--bootstrap", f"http://{self.host}:{self.peer.bootstrap_port}"]
        return command

    def ready(self) -> bool:
        import httpx

        try:
            response = httpx.get(f"{self.address}/readyz", timeout=1.0, **self._client_options())
            return response.status_code == 200
        except (httpx.HTTPError, OSError):
            return False

    def _client_options(self) -> dict[str, Any]:
        """Secured: trust the stack's CA only, and send the API key."""
        if self.security is None:
            return {}
        settings = self.security.qdrant_settings(self.address)
        assert settings.ca_file is not None
        return {
            "verify": ssl.create_default_context(cafile=str(settings.ca_file)),
            "headers": {"api-key": settings.api_key.reveal()},
        }
