"""`make run-cluster` (`python -m tools.run --cluster`): the production topology
on one machine. The cluster profile of the stack (three Kafka brokers, three
Qdrant nodes, Neo4j: tools/stack/cluster.py), the sample corpus published,
then two workers in one consumer group and two API processes, each its own
process talking to its own Qdrant node, their logs under the cluster's `run/`
folder. Ctrl-C stops the four processes, then the services this call started.

Every process reads the cluster's client settings (`cluster.env`): topics with
three copies of which two must hold a write, collections with two shards on
two nodes each. The admin routes open with the stack's own key, as `make run`'s."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings
from ops.admin_key import stack_key_path
from tools.admin_key import announcement, stack_admin_key
from tools.children import stop_child
from tools.sample import publish_sample
from tools.stack.cluster import ClusterPorts, qdrant_urls
from tools.stack.env_file import how_to_use
from tools.stack.local import LocalStack, StackError

POLL_S = 1.0


@dataclass(frozen=True)
class Role:
    name: str
    command: list[str]  # after `python -m ops.cli`
    port_offset: int  # from DOCSTREAM_API_PORT
    qdrant_node: int


# Two APIs on the API port and the next; the workers serve /health and /metrics
# on ports of their own. Each has a Qdrant node to itself where it can.
ROLES = (
    Role("api-1", ["api"], 0, 0),
    Role("api-2", ["api"], 1, 1),
    Role("worker-1", ["worker", "--no-api"], 101, 2),
    Role("worker-2", ["worker", "--no-api"], 102, 0),
)


def run_cluster(settings: Settings, sample: Path, env: dict[str, str]) -> int:
    key = stack_admin_key(settings.stack_dir)
    print(announcement(key), flush=True)
    ports = ClusterPorts.default()
    stack = LocalStack(settings, cluster=ports, env=env)
    started: list[str] = []
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        started = stack.up()
        cluster_env = {**env, **stack.client_env(), **_admin_keys(env, settings)}
        print(f"[run] vector store: {stack.engine()}", flush=True)
        publish_sample(Settings.from_env(cluster_env), sample)
        children = _start(cluster_env, ports, stack.root / "run", settings.api.port)
        _announce(stack, settings.api.port)
        return _supervise(children)
    except StackError as exc:
        print(f"[run] error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("\n[run] interrupted", flush=True)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for name, child in children.items():
            print(f"[run] stopping {name}", flush=True)
            stop_child(child)
        if started:
            print(f"[run] stopping {', '.join(started)}", flush=True)
            stack.down(only=started)


def _admin_keys(env: dict[str, str], settings: Settings) -> dict[str, str]:
    """The stack's key, by its file, unless the API keys are configured already."""
    if env.get("DOCSTREAM_API_KEYS") or env.get("DOCSTREAM_API_KEYS_FILE"):
        return {}
    return {"DOCSTREAM_API_KEYS_FILE": str(stack_key_path(settings.stack_dir).resolve())}


def _start(
    env: dict[str, str], ports: ClusterPorts, logs: Path, api_port: int
) -> dict[str, subprocess.Popen[bytes]]:
    nodes = qdrant_urls(ports)
    children = {}
    for role in ROLES:
        child_env = {
            **env,
            "DOCSTREAM_API_PORT": str(api_port + role.port_offset),
            "QDRANT_URL": nodes[role.qdrant_node],
        }
        with (logs / f"{role.name}.log").open("ab") as log:
            children[role.name] = subprocess.Popen(
                [sys.executable, "-m", "ops.cli", *role.command],
                env=child_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        print(
            f"[run] {role.name}: port {api_port + role.port_offset}, Qdrant node "
            f"{nodes[role.qdrant_node]}, log {logs / f'{role.name}.log'}",
            flush=True,
        )
    return children


def _announce(stack: LocalStack, api_port: int) -> None:
    assert stack.env_file is not None
    print(
        f"\n[run] the APIs answer on ports {api_port} and {api_port + 1} once they are ready "
        f"(GET /health/ready).\n[run] For the CLI: {how_to_use(stack.env_file)}\n"
        f"[run] then: docstream status --metrics-url http://127.0.0.1:{api_port + 101}/metrics\n"
        "[run] Ctrl-C stops the workers, the APIs and the cluster.\n",
        flush=True,
    )


def _supervise(children: dict[str, subprocess.Popen[bytes]]) -> int:
    """Until one of them exits (its log says why) or Ctrl-C."""
    while True:
        for name, child in children.items():
            code = child.poll()
            if code is not None:
                print(f"[run] {name} exited with {code}: stopping the others", flush=True)
                return code or 1
        time.sleep(POLL_S)
