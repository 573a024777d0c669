"""Checks over rendered Kubernetes objects that their schemas cannot express."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tools.validate_deploy.runner import Problems

Obj = dict[str, Any]
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")
# The health endpoints of the app, served on every docstream container's port.
LIVE, READY = "/health/live", "/health/ready"
WORKER_LABEL = ("app.kubernetes.io/component", "worker")


def _name(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _pod_labels(obj: Obj) -> dict[str, str]:
    labels = obj["spec"]["template"].get("metadata", {}).get("labels") or {}
    return dict(labels)


def containers(objects: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    for obj in objects:
        if obj["kind"] in WORKLOADS:
            for container in obj["spec"]["template"]["spec"].get("containers") or []:
                yield obj, container


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def reference_problems(objects: list[Obj]) -> Problems:
    """Each name or selector in one object finds the object it means."""
    by_kind: dict[str, dict[str, Obj]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = obj
    workloads = [o for o in objects if o["kind"] in WORKLOADS]
    problems = []
    for obj in workloads:
        selector = obj["spec"]["selector"].get("matchLabels") or {}
        if not _selects(selector, _pod_labels(obj)):
            problems.append(f"{_name(obj)}: selector does not match its pod labels")
    for obj, container in containers(objects):
        for source in container.get("envFrom") or []:
            for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                ref = source.get(key)
                if ref and not ref.get("optional") and ref["name"] not in by_kind.get(kind, {}):
                    problems.append(f"{_name(obj)}: envFrom names a missing {kind} {ref['name']}")
    for obj in objects:
        problems += _selector_problems(obj, workloads)
        problems += _target_problems(obj, by_kind)
    return problems


def _selector_problems(obj: Obj, workloads: list[Obj]) -> Problems:
    if obj["kind"] == "Service" and obj["spec"].get("type") != "ExternalName":
        selector = obj["spec"].get("selector") or {}
    elif obj["kind"] == "PodDisruptionBudget":
        selector = obj["spec"]["selector"].get("matchLabels") or {}
    else:
        return []
    if any(_selects(selector, _pod_labels(w)) for w in workloads):
        return []
    return [f"{_name(obj)}: selector {selector} matches no pods"]


def _target_problems(obj: Obj, by_kind: dict[str, dict[str, Obj]]) -> Problems:
    if obj["kind"] == "HorizontalPodAutoscaler":
        target = obj["spec"]["scaleTargetRef"]
        if target["name"] not in by_kind.get(target["kind"], {}):
            return [f"{_name(obj)}: scales a missing {target['kind']} {target['name']}"]
    if obj["kind"] == "Ingress":
        problems = []
        for rule in obj["spec"].get("rules") or []:
            for path in (rule.get("http") or {}).get("paths") or []:
                service = path["backend"]["service"]
                found = by_kind.get("Service", {}).get(service["name"])
                ports = [p.get("name") for p in found["spec"]["ports"]] if found else []
                wanted = service["port"].get("name")
                if not found or (wanted and wanted not in ports):
                    problems.append(f"{_name(obj)}: backend {service} is not a Service port")
        return problems
    return []


def probe_problems(objects: list[Obj]) -> Problems:
    """docstream containers probe /health/live (liveness) and /health/ready (readiness)."""
    problems = []
    for obj, container in containers(objects):
        if (container.get("command") or [""])[0] != "docstream":
            continue
        for probe, path in (("livenessProbe", LIVE), ("readinessProbe", READY)):
            got = ((container.get(probe) or {}).get("httpGet") or {}).get("path")
            if got != path:
                problems.append(f"{_name(obj)}: {probe} should GET {path}, has {got}")
    return problems


def partition_problems(objects: list[Obj]) -> Problems:
    """Worker replicas (and any autoscaler's maximum) within DOCSTREAM_PARTITIONS:
    a consumer group gives each partition to one member, the rest idle."""
    partitions = [
        int(o["data"]["DOCSTREAM_PARTITIONS"])
        for o in objects
        if o["kind"] == "ConfigMap" and "DOCSTREAM_PARTITIONS" in (o.get("data") or {})
    ]
    limit = min(partitions, default=3)  # core/settings.py's default
    workers = {
        o["metadata"]["name"]: o
        for o in objects
        if o["kind"] in WORKLOADS and _pod_labels(o).get(WORKER_LABEL[0]) == WORKER_LABEL[1]
    }
    problems = []
    for obj in workers.values():
        if obj["spec"].get("replicas", 1) > limit:
            problems.append(
                f"{_name(obj)}: {obj['spec']['replicas']} replicas > {limit} partitions"
            )
    for obj in objects:
        if obj["kind"] == "HorizontalPodAutoscaler":
            target = obj["spec"]["scaleTargetRef"]["name"]
            if target in workers and obj["spec"]["maxReplicas"] > limit:
                problems.append(f"{_name(obj)}: maxReplicas above {limit} partitions")
    return problems
