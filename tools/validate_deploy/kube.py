"""k8s/: each kustomization (the base and every overlay) rendered by the real
kustomize (kubectl's, shipped in a wheel of the dev extra), every rendered
object validated against the Kubernetes OpenAPI schemas of the oldest and the
newest version we support (kubernetes-validate, strict: unknown fields fail),
then what schemas cannot see: references between objects, probes, the worker
bound by partitions, and variable names the app reads."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from tools.validate_deploy import workloads
from tools.validate_deploy.common import unknown_variables
from tools.validate_deploy.runner import Problems, Skipped

# The oldest Kubernetes minor still commonly run, and the newest with schemas.
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")


def kustomizations(k8s: Path) -> list[Path]:
    return sorted(p.parent for p in k8s.rglob("kustomization.yaml"))


def kustomize_command() -> list[str]:
    """The venv's kubectl (dev extra), else kustomize or kubectl on PATH."""
    beside_python = Path(sys.executable).parent / "kubectl"
    if beside_python.is_file():
        return [str(beside_python), "kustomize"]
    if kustomize := shutil.which("kustomize"):
        return [kustomize, "build"]
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    raise Skipped("no kubectl or kustomize (install the dev extra)")


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects `kubectl apply -k directory` would send."""
    result = subprocess.run(
        [*kustomize_command(), str(directory)], capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise RenderError(result.stderr.strip() or f"exit status {result.returncode}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


class RenderError(Exception):
    pass


def check_kustomization(directory: Path) -> Problems:
    try:
        objects = render(directory)
    except RenderError as exc:
        return [f"kustomize: {line}" for line in str(exc).splitlines()]
    if not objects:
        return ["kustomize rendered no objects"]
    return check_objects(objects)


def check_objects(objects: list[dict[str, Any]]) -> Problems:
    problems: Problems = []
    for obj in objects:
        problems += schema_problems(obj)
    if problems:  # the checks below assume well-formed objects
        return problems
    problems += workloads.reference_problems(objects)
    problems += workloads.probe_problems(objects)
    problems += workloads.partition_problems(objects)
    problems += variable_problems(objects)
    return problems


def name_of(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    return f"{obj.get('kind', '?')}/{metadata.get('name', '?')}"


def schema_problems(obj: dict[str, Any]) -> Problems:
    problems = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(p) for p in exc.path) or "(top)"
            problems.append(f"{name_of(obj)} (Kubernetes {version}): {where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(
                f"{name_of(obj)}: Kubernetes {version} has no {obj.get('apiVersion')} "
                f"{obj.get('kind')}"
            )
    return problems


def variable_problems(objects: list[dict[str, Any]]) -> Problems:
    """Keys of the ConfigMaps and Secrets the containers load, and their env names."""
    problems = []
    for obj in objects:
        if obj["kind"] in ("ConfigMap", "Secret"):
            keys = list(obj.get("data") or {}) + list(obj.get("stringData") or {})
            problems += unknown_variables(keys, name_of(obj))
    for obj, container in workloads.containers(objects):
        names = [entry["name"] for entry in container.get("env") or []]
        problems += unknown_variables(names, f"{name_of(obj)} container {container['name']}")
    return problems
