"""`python -m tools.stack up|down|status|start`: the local stack as a whole.

Ports come from the same variables the clients read (KAFKA_BOOTSTRAP_SERVERS,
NEO4J_URI, QDRANT_URL), so the stack and the pipeline always agree. A Qdrant
server joins the stack only when QDRANT_URL names this machine; an empty
QDRANT_URL keeps Qdrant embedded in the worker, and a remote one is not ours. `up` is idempotent: a
service already running (ours, or anyone's answering on that address) is left
as it is; `down` stops only the processes this stack started.

Two profiles: plaintext (the default, and `make run`'s) and secured
(`LocalStack(settings, secure=True)`, `up --secure`: tools/stack/secure.py).
They share the PID files and markers, so `down` stops either; `up` records the
profile it started (`run/profile`), refuses to start the other one beside it,
and lets the command line's `status`, `down` and `start` follow it."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from core.settings import Settings
from tools.stack.cluster import ENV_HEADER as CLUSTER_ENV_HEADER
from tools.stack.cluster import ClusterPorts, cluster_services, qdrant_urls
from tools.stack.cluster import client_env as cluster_client_env
from tools.stack.env_file import write_env_file
from tools.stack.ports import free_port
from tools.stack.process import ManagedProcess
from tools.stack.secure import ENV_HEADER, SecureProfile
from tools.stack.services import (
    KafkaBroker,
    Neo4jServer,
    PrepareError,
    QdrantServer,
    Service,
)

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
SECURE, PLAINTEXT, CLUSTER = "secure", "plaintext", "cluster"


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


def _others_join(service: Service) -> bool:
    """The first peer of a Qdrant cluster: a node that bootstraps through it
    before it listens fails its start."""
    return isinstance(service, QdrantServer) and service.peer is not None and service.peer.first


def recorded_profile(stack_dir: Path) -> str | None:
    """The profile the last `up` in `stack_dir` started, while any of it runs."""
    try:
        return profile_file(stack_dir).read_text().strip() or None
    except FileNotFoundError:
        return None


def profile_file(stack_dir: Path) -> Path:
    return stack_dir.resolve() / "run" / "profile"


@dataclass(frozen=True)
class OwnServer:
    url: str
    pid: int


@contextmanager
def own_qdrant_server(
    root: Path, binary: Path | None, ready_s: float = 60.0
) -> Iterator[OwnServer]:
    """A Qdrant server of the caller's own (a test session, a benchmark), not
    the stack's: its folder under `root`, a free loopback port, started as the
    stack starts one and stopped by its PID on exit. A missing binary raises
    QdrantBinaryMissing, with what to set."""
    server = QdrantServer(root, "127.0.0.1", free_port(), binary)
    server.prepare()
    marker = server.marker(root)
    process = ManagedProcess(server.name, root / "run", marker=marker)
    pid = process.start(server.command(marker), cwd=root)
    try:
        deadline = time.monotonic() + ready_s
        while not server.ready():
            if process.pid() is None or time.monotonic() > deadline:
                raise RuntimeError(f"the Qdrant server did not start:\n{process.log_tail()}")
            time.sleep(0.2)
        yield OwnServer(server.address, pid)
    finally:
        process.stop()


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
        secure: bool = False,
        cluster: ClusterPorts | None = None,
        cluster_dir: Path | None = None,
    ) -> None:
        self.cluster = cluster
        if cluster is not None:
            # A folder of its own (its PID files, data, recorded profile): it
            # runs beside the plaintext or secured stack, on ports of its own.
            # `cluster_dir` moves it (a test's cluster); the jars stay shared.
            self.root = (cluster_dir or settings.stack_dir / CLUSTER).resolve()
            self.security = None
            binary = qdrant_binary(env)
            lib_root = settings.stack_dir.resolve()
            self.services: list[Service] = cluster_services(self.root, cluster, binary, lib_root)
            self.qdrant_url = qdrant_urls(cluster)[0]
            return
        self.root = settings.stack_dir.resolve()
        self.security = SecureProfile(self.root) if secure else None
        first_broker = settings.kafka.bootstrap_servers.split(",")[0]
        kafka_host, kafka_port = _split_host_port(first_broker, 9092)
        neo4j_host, neo4j_port = _split_host_port(settings.neo4j.uri, 7687)
        for host, var in ((kafka_host, "KAFKA_BOOTSTRAP_SERVERS"), (neo4j_host, "NEO4J_URI")):
            if host not in LOCAL_HOSTS:
                raise StackError(
                    f"{var} names {host}: the local stack only runs services on this machine"
                )
        controller = controller_port or int(env.get("KAFKA_CONTROLLER_PORT", kafka_port + 1))
        self.services = [
            KafkaBroker(self.root, "127.0.0.1", kafka_port, controller, security=self.security),
            Neo4jServer(self.root, "127.0.0.1", neo4j_port, security=self.security),
        ]
        self.qdrant_url = settings.qdrant.url
        if settings.qdrant.url:
            # The host and port only: the profile decides the scheme (secure.py).
            qdrant_host, qdrant_port = _split_host_port(settings.qdrant.url, 6333)
            if qdrant_host in LOCAL_HOSTS:
                server = QdrantServer(
                    self.root,
                    "127.0.0.1",
                    qdrant_port,
                    qdrant_binary(env),
                    security=self.security,
                )
                self.services.append(server)

    @property
    def profile(self) -> str:
        if self.cluster is not None:
            return CLUSTER
        return SECURE if self.security is not None else PLAINTEXT

    @property
    def env_file(self) -> Path | None:
        """Where `up` writes the client settings (None: the plaintext stack's
        are the defaults and the variables it was started with)."""
        if self.cluster is not None:
            return self.root / "cluster.env"
        return self.security.env_file if self.security is not None else None

    def _process(self, service: Service) -> ManagedProcess:
        return ManagedProcess(service.name, self.root / "run", marker=self._marker(service))

    def _marker(self, service: Service) -> str:
        return service.marker(self.root)

    def up(self, timeout_s: float = 180.0, log: bool = True) -> list[str]:
        """Start what is not running; wait until every service answers. Returns
        the names of the services this call started."""
        self._claim_profile()
        started: list[str] = []
        try:
            for service in self.services:
                process = self._process(service)
                if process.pid() is not None or service.ready():
                    continue
                if log:
                    print(f"[stack] preparing {service.name}{_first_run(service)}")
                self._prepare(service)
                process.start(service.command(self._marker(service)), cwd=self.root)
                started.append(service.name)
                if _others_join(service):
                    # The next nodes bootstrap through it: it must answer first.
                    self._wait_ready(service, timeout_s, log)
            for service in self.services:
                self._wait_ready(service, timeout_s, log)
        except BaseException:
            # Ctrl-C or a failed start half-way: what this call started would
            # otherwise outlive it (each service runs in a session of its own).
            self.down(only=started)
            raise
        return started

    def _claim_profile(self) -> None:
        """Refuse to start one profile beside the other's running processes
        (same ports, and a client would find the wrong one); else record ours.
        A secured stack also makes its certificates and secrets now, and
        writes the client settings to `secure.env`."""
        recorded = recorded_profile(self.root) or PLAINTEXT
        running = [s.name for s in self.services if self._process(s).pid() is not None]
        if recorded != self.profile and running:
            raise StackError(
                f"the stack in {self.root} runs the {recorded} profile ({', '.join(running)}): "
                "stop it first (python -m tools.stack down)"
            )
        profile_file(self.root).parent.mkdir(parents=True, exist_ok=True)
        profile_file(self.root).write_text(self.profile)
        if self.security is not None:
            self.security.prepare()
        if self.env_file is not None:
            header = CLUSTER_ENV_HEADER if self.cluster is not None else ENV_HEADER
            write_env_file(self.env_file, self.client_env(), header)

    def _prepare(self, service: Service) -> None:
        try:
            service.prepare()
        except PrepareError as exc:
            raise StackError(str(exc)) from None

    def client_env(self) -> dict[str, str]:
        """The client settings that reach this stack: for the secured profile,
        its servers, security and the files of its secrets (no secret itself);
        for the plaintext one, the addresses alone; for the cluster, every
        broker's address and the replication its topics and collections need."""
        if self.cluster is not None:
            return cluster_client_env(self.cluster)
        addresses = {service.name: service.address for service in self.services}
        if self.security is not None:
            return self.security.client_env(
                addresses["kafka"], addresses["neo4j"], addresses.get("qdrant")
            )
        env = {"KAFKA_BOOTSTRAP_SERVERS": addresses["kafka"], "NEO4J_URI": addresses["neo4j"]}
        return env | ({"QDRANT_URL": addresses["qdrant"]} if "qdrant" in addresses else {})

    def engine(self) -> str:
        """Which Qdrant the pipeline uses, in words, for `make run` to say."""
        if self.cluster is not None:
            return f"a Qdrant cluster of {len(self.cluster.qdrant)} nodes at " + ", ".join(
                qdrant_urls(self.cluster)
            )
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
        if all(self._process(s).pid() is None for s in self.services):
            profile_file(self.root).unlink(missing_ok=True)
        return stopped

    def start(self, name: str, timeout_s: float = 180.0) -> None:
        """Start one service again (used to bring back a service after `down`)."""
        service = self._service(name)
        process = self._process(service)
        if process.pid() is None and not service.ready():
            self._claim_profile()
            self._prepare(service)
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
