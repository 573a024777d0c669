"""The services of the local stack: Kafka and Neo4j (JVM processes from Maven
artifacts) and, when QDRANT_URL names this machine, a Qdrant server (a binary
the user brings). Each knows how to prepare its files, the command that runs
it, the marker that tells its process from any other, and how to ask it (with
a real client) if it is ready."""

from __future__ import annotations

import base64
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tools.stack.maven import compile_launcher, fetch_jars

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


def jvm_marker(stack_root: Path, name: str) -> str:
    """A system property that the JVM ignores and `ps` shows."""
    return f"-Ddocstream.stack={stack_root}/{name}"


@dataclass
class KafkaBroker:
    """Kafka 3.9 in KRaft mode, one node that is both broker and controller."""

    root: Path  # the stack folder
    host: str
    port: int
    controller_port: int
    name: str = "kafka"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def lib(self) -> Path:
        return self.root / "lib" / "kafka"

    def marker(self, stack_root: Path) -> str:
        return jvm_marker(stack_root, self.name)

    @property
    def data(self) -> Path:
        return self.root / "data" / "kafka"

    @property
    def config(self) -> Path:
        return self.root / "conf" / "kafka.properties"

    def properties(self) -> str:
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@{self.host}:{self.controller_port}",
                f"listeners=PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://{self.host}:{self.port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={self.data.resolve()}",
                "num.partitions=3",
                # One node: every internal topic has one replica.
                "offsets.topic.replication.factor=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=true",
                "",
            ]
        )

    def prepare(self) -> None:
        fetch_jars("kafka-pom.xml", self.lib)
        self.config.parent.mkdir(parents=True, exist_ok=True)
        self.config.write_text(self.properties())
        log4j = self.root / "conf" / "kafka-log4j.properties"
        log4j.write_text(
            KAFKA_LOG4J.format(log=(self.root / "logs" / "kafka-server.log").resolve())
        )
        if not (self.data / "meta.properties").exists():
            self._format_storage()

    def _format_storage(self) -> None:
        import subprocess

        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        self.data.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                "java",
                "-cp",
                f"{self.lib}/*",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.config),
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")

    def command(self, marker: str) -> list[str]:
        log4j = (self.root / "conf" / "kafka-log4j.properties").resolve()
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

    def ready(self) -> bool:
        from core.kafka.admin import admin_client

        admin = admin_client(self.address)
        try:
            return bool(admin.list_topics(timeout=1.0).brokers)
        except Exception:
            return False


@dataclass
class Neo4jServer:
    """Neo4j 5 community, embedded in the project's launcher with Bolt switched on."""

    root: Path
    host: str
    port: int
    name: str = "neo4j"

    @property
    def address(self) -> str:
        return f"bolt://{self.host}:{self.port}"

    @property
    def lib(self) -> Path:
        return self.root / "lib" / "neo4j"

    def marker(self, stack_root: Path) -> str:
        return jvm_marker(stack_root, self.name)

    @property
    def launcher(self) -> Path:
        return self.root / "lib" / "neo4j-launcher"

    def prepare(self) -> None:
        fetch_jars("neo4j-pom.xml", self.lib)
        compile_launcher("Neo4jLauncher.java", self.lib, self.launcher)
        (self.root / "data" / "neo4j").mkdir(parents=True, exist_ok=True)

    def command(self, marker: str) -> list[str]:
        classpath = f"{self.lib.resolve()}/*:{self.launcher.resolve()}"
        home = (self.root / "data" / "neo4j").resolve()
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
        ]

    def ready(self) -> bool:
        from neo4j import GraphDatabase

        try:
            with (
                GraphDatabase.driver(self.address, auth=None, connection_timeout=1.0) as driver,
                driver.session() as session,
            ):
                # An auto-commit query: one try, no driver-side retry loop.
                session.run("RETURN 1").consume()
            return True
        except Exception:
            return False


class QdrantBinaryMissing(RuntimeError):
    """QDRANT_URL names this machine, but there is no server binary to start."""


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

    @property
    def address(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def data(self) -> Path:
        return self.root / "data" / self.name

    @property
    def config(self) -> Path:
        return self.root / "conf" / f"{self.name}.yaml"

    def marker(self, stack_root: Path) -> str:
        return str(self.config.resolve())

    def settings(self) -> dict[str, Any]:
        return {
            "log_level": "INFO",
            "telemetry_disabled": True,
            "storage": {
                "storage_path": str((self.data / "storage").resolve()),
                "snapshots_path": str((self.data / "snapshots").resolve()),
            },
            "service": {"host": self.host, "http_port": self.port, "grpc_port": self.port + 1},
        }

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
        self.config.write_text(json.dumps(self.settings(), indent=2))

    def command(self, marker: str) -> list[str]:
        assert self.binary is not None, "prepare() refuses a missing binary"
        return [str(self.binary), "--config-path", marker]

    def ready(self) -> bool:
        import httpx

        try:
            return httpx.get(f"{self.address}/readyz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False
