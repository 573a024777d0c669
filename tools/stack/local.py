"""`python -m tools.stack up|down|status|start`: the local stack as a whole.

Ports come from the same variables the clients read (KAFKA_BOOTSTRAP_SERVERS,
NEO4J_URI, QDRANT_URL), so the stack and the pipeline always agree. A Qdrant
server joins the stack only when QDRANT_URL names this machine; an empty
QDRANT_URL keeps Qdrant embedded in the worker, and a remote one is not ours. `up` is idempotent: a
service already running (ours, or anyone's answering on that address) is left
as it is; `down` stops only the processes this stack started."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from core.settings import Settings
from tools.stack.process import ManagedProcess
from tools.stack.services import (
    KafkaBroker,
    Neo4jServer,
    QdrantBinaryMissing,
    QdrantServer,
    Service,
)

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class StackError(RuntimeError):
    pass


@dataclass
class ServiceState:
    name: str
    address: str
    state: str  # "ready" | "starting" | "stopped" | "external"
    pid: int | None = None


def _first_run(service: Service) -> str:
    if isinstance(service, KafkaBroker | Neo4jServer) and not service.lib.exists():
        return " (first run: fetches its jars from Maven Central)"
    return ""


def _split_host_port(value: str, default_port: int) -> tuple[str, int]:
    parsed = urlparse(value if "://" in value else f"x://{value}")
    return parsed.hostname or "127.0.0.1", parsed.port or default_port


def qdrant_binary(env: Mapping[str, str]) -> Path | None:
    """QDRANT_BIN, else `qdrant` on PATH, else None."""
    named = env.get("QDRANT_BIN", "").strip()
    if named:
        return Path(named).expanduser().resolve()
    found = shutil.which("qdrant")
    return Path(found).resolve() if found else None


class LocalStack:
    def __init__(
        self,
        settings: Settings,
        controller_port: int | None = None,
        env: Mapping[str, str] = os.environ,
    ) -> None:
        self.root = settings.stack_dir.resolve()
        first_broker = settings.kafka.bootstrap_servers.split(",")[0]
        kafka_host, kafka_port = _split_host_port(first_broker, 9092)
        neo4j_host, neo4j_port = _split_host_port(settings.neo4j.uri, 7687)
        for host, var in ((kafka_host, "KAFKA_BOOTSTRAP_SERVERS"), (neo4j_host, "NEO4J_URI")):
            if host not in LOCAL_HOSTS:
                raise StackError(
                    f"{var} names {host}: the local stack only runs services on this machine"
                )
        controller = controller_port or int(env.get("KAFKA_CONTROLLER_PORT", kafka_port + 1))
        self.services: list[Service] = [
            KafkaBroker(self.root, "127.0.0.1", kafka_port, controller),
            Neo4jServer(self.root, "127.0.0.1", neo4j_port),
        ]
        self.qdrant_url = settings.qdrant.url
        if settings.qdrant.url:
            qdrant_host, qdrant_port = _split_host_port(settings.qdrant.url, 6333)
            if qdrant_host in LOCAL_HOSTS:
                server = QdrantServer(self.root, "127.0.0.1", qdrant_port, qdrant_binary(env))
                self.services.append(server)

    def _process(self, service: Service) -> ManagedProcess:
        return ManagedProcess(service.name, self.root / "run", marker=self._marker(service))

    def _marker(self, service: Service) -> str:
        return service.marker(self.root)

    def up(self, timeout_s: float = 180.0, log: bool = True) -> list[str]:
        """Start what is not running; wait until every service answers. Returns
        the names of the services this call started."""
        started = []
        for service in self.services:
            process = self._process(service)
            if process.pid() is not None or service.ready():
                continue
            if log:
                print(f"[stack] preparing {service.name}{_first_run(service)}")
            try:
                service.prepare()
            except QdrantBinaryMissing as exc:
                raise StackError(str(exc)) from None
            process.start(service.command(self._marker(service)), cwd=self.root)
            started.append(service.name)
        for service in self.services:
            self._wait_ready(service, timeout_s, log)
        return started

    def engine(self) -> str:
        """Which Qdrant the pipeline uses, in words, for `make run` to say."""
        for service in self.services:
            if isinstance(service, QdrantServer):
                return f"a Qdrant server at {service.address} (started from {service.binary})"
        if self.qdrant_url:
            return f"the Qdrant server at {self.qdrant_url}"
        return "the embedded Qdrant (QDRANT_URL names a server instead)"

    def _wait_ready(self, service: Service, timeout_s: float, log: bool) -> None:
        process = self._process(service)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if service.ready():
                if log:
                    print(f"[stack] {service.name} ready at {service.address}")
                return
            if process.pid() is None:
                raise StackError(
                    f"{service.name} exited during start; last log lines:\n{process.log_tail()}"
                )
            time.sleep(0.5)
        raise StackError(f"{service.name} not ready after {timeout_s:.0f}s:\n{process.log_tail()}")

    def down(self, only: list[str] | None = None) -> list[str]:
        """Stop the processes this stack started: all of them (`only=None`) or
        the named ones (an empty list stops nothing)."""
        stopped = []
        for service in reversed(self.services):
            if only is not None and service.name not in only:
                continue
            if self._process(service).stop():
                stopped.append(service.name)
        return stopped

    def start(self, name: str, timeout_s: float = 180.0) -> None:
        """Start one service again (used to bring back a service after `down`)."""
        service = self._service(name)
        process = self._process(service)
        if process.pid() is None and not service.ready():
            try:
                service.prepare()
            except QdrantBinaryMissing as exc:
                raise StackError(str(exc)) from None
            process.start(service.command(self._marker(service)), cwd=self.root)
        self._wait_ready(service, timeout_s, log=False)

    def _service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise StackError(f"no service named {name!r}")

    def status(self) -> list[ServiceState]:
        states = []
        for service in self.services:
            pid = self._process(service).pid()
            ready = service.ready()
            if pid is not None:
                state = "ready" if ready else "starting"
            else:
                state = "external" if ready else "stopped"
            states.append(ServiceState(service.name, service.address, state, pid))
        return states
