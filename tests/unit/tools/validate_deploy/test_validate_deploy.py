"""The deployment checks pass on the real assets and fail on broken ones."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.validate_deploy import (
    Check,
    Outcome,
    Skipped,
    all_checks,
    compose,
    dockerfile,
    grafana,
    kube,
    prometheus,
    run_checks,
    workloads,
)
from tools.validate_deploy.__main__ import main, strict_from

ROOT = Path(__file__).resolve().parents[4]


def write_yaml(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_every_check_passes_on_the_repository() -> None:
    outcomes = run_checks(all_checks(ROOT))
    assert [(o.name, o.problems) for o in outcomes if o.problems] == []
    names = {o.name for o in outcomes}
    assert {"k8s: k8s/overlays/cpu", "k8s: k8s/overlays/gpu", "prometheus: alert rules"} <= names


def test_the_command_exits_non_zero_when_a_check_fails(tmp_path: Path) -> None:
    (tmp_path / "k8s").mkdir()
    assert main(["--root", str(tmp_path)]) == 1


# --- docker-compose.yml -----------------------------------------------------

BROKEN_COMPOSE = {
    "services": {
        "api": {
            "image": "docstream",
            "ports": 8000,  # must be a list
            "restrat": "always",  # misspelt key
            "healthcheck": {"test": ["CMD", "true"]},
        }
    }
}


def test_a_broken_compose_file_fails_the_schema(tmp_path: Path) -> None:
    problems = compose.check_schema(write_yaml(tmp_path / "docker-compose.yml", BROKEN_COMPOSE))
    assert any("ports" in p for p in problems)
    assert any("restrat" in p for p in problems)


def test_compose_that_is_not_yaml_fails(tmp_path: Path) -> None:
    path = tmp_path / "docker-compose.yml"
    path.write_text("services: [unclosed\n")
    assert compose.check_schema(path) and compose.check_policy(path)


def test_compose_policy_catches_what_the_schema_allows(tmp_path: Path) -> None:
    document = {
        "services": {
            "worker": {
                "image": "docstream",
                "command": ["docstream", "worker"],
                "environment": {"KAFKA_BOOTSTRAP_SERVER": "kafka:9092"},  # missing S
                "volumes": ["./nowhere:/etc/x:ro"],
            }
        }
    }
    path = write_yaml(tmp_path / "docker-compose.yml", document)
    assert compose.check_schema(path) == []
    problems = compose.check_policy(path)
    assert any("KAFKA_BOOTSTRAP_SERVER is not a variable" in p for p in problems)
    assert any("./nowhere does not exist" in p for p in problems)
    assert any("no health check" in p for p in problems)
    assert any("no service kafka" in p for p in problems)


def test_compose_policy_catches_more_copies_than_brokers_or_nodes(tmp_path: Path) -> None:
    health = {"test": ["CMD", "true"]}
    environment = {"KAFKA_REPLICATION_FACTOR": "3", "QDRANT_REPLICATION_FACTOR": "2"}
    document = {
        "services": {
            "kafka": {"image": "apache/kafka:3.9.1", "healthcheck": health},
            "kafka-2": {"image": "apache/kafka:3.9.1", "healthcheck": health},
            "qdrant": {"image": "qdrant/qdrant:v1.12.4", "healthcheck": health},
            "qdrant-2": {"image": "qdrant/qdrant:v1.12.4", "healthcheck": health},
            "worker": {
                "image": "docstream",
                "command": ["docstream", "worker"],
                "environment": environment,
                "healthcheck": health,
            },
        }
    }
    path = write_yaml(tmp_path / "docker-compose.yml", document)
    problems = compose.check_policy(path)
    assert (
        "docker-compose.yml: service worker: KAFKA_REPLICATION_FACTOR 3 but 2 brokers" in problems
    )
    assert not any("QDRANT_REPLICATION_FACTOR" in p for p in problems)


def test_compose_config_catches_a_dependency_on_a_missing_service(tmp_path: Path) -> None:
    document = {"services": {"api": {"image": "x", "depends_on": ["kafak"]}}}
    path = write_yaml(tmp_path / "docker-compose.yml", document)
    assert compose.check_schema(path) == []
    try:
        problems = compose.check_config(path, tmp_path / ".env.example")
    except Skipped as exc:
        pytest.skip(str(exc))
    assert problems and any("kafak" in p for p in problems)


# --- Kubernetes ------------------------------------------------------------


@pytest.fixture
def k8s_copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "k8s", tmp_path / "k8s")
    return tmp_path / "k8s"


def need_kustomize() -> None:
    try:
        kube.kustomize_command()
    except Skipped as exc:
        pytest.skip(str(exc))


def render_or_skip(directory: Path) -> list[dict[str, Any]]:
    need_kustomize()
    return kube.render(directory)


def test_a_broken_manifest_fails_the_kubernetes_schema(k8s_copy: Path) -> None:
    worker = k8s_copy / "base" / "worker.yaml"
    worker.write_text(worker.read_text().replace("readinessProbe:", "readinesProbe:"))
    need_kustomize()
    problems = kube.check_kustomization(k8s_copy / "overlays" / "cpu")
    assert any("'readinesProbe' was unexpected" in p for p in problems)


def test_a_manifest_kustomize_cannot_render_fails(k8s_copy: Path) -> None:
    (k8s_copy / "base" / "pdb.yaml").unlink()
    need_kustomize()
    problems = kube.check_kustomization(k8s_copy / "overlays" / "gpu")
    assert problems and all(p.startswith("kustomize:") for p in problems)


def test_rendered_overlays_differ_where_they_should() -> None:
    cpu = render_or_skip(ROOT / "k8s" / "overlays" / "cpu")
    gpu = render_or_skip(ROOT / "k8s" / "overlays" / "gpu")

    def worker(objects: list[dict[str, Any]]) -> dict[str, Any]:
        [found] = [
            o
            for o in objects
            if o["kind"] == "Deployment" and o["metadata"]["name"] == "docstream-worker"
        ]
        container: dict[str, Any] = found["spec"]["template"]["spec"]["containers"][0]
        return container

    assert worker(cpu)["image"].endswith("-cpu")
    assert worker(gpu)["image"].endswith("-cuda")
    assert worker(gpu)["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in worker(cpu)["resources"].get("limits", {})


def deployment(name: str, component: str, replicas: int) -> dict[str, Any]:
    labels = {"app.kubernetes.io/component": component}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "i", "command": ["docstream"]}]},
            },
        },
    }


def test_worker_replicas_are_bounded_by_partitions() -> None:
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "docstream"},
        "data": {"DOCSTREAM_PARTITIONS": "3"},
    }
    assert workloads.partition_problems([config, deployment("w", "worker", 3)]) == []
    assert workloads.partition_problems([config, deployment("w", "worker", 4)]) == [
        "Deployment/w: 4 replicas > 3 partitions"
    ]


def test_references_and_probes_are_checked() -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"selector": {"app.kubernetes.io/component": "apj"}, "ports": [{"port": 80}]},
    }
    objects = [deployment("a", "api", 1), service]
    problems = kube.check_objects(objects)
    assert any("matches no pods" in p for p in problems)
    assert any("livenessProbe should GET /health/live" in p for p in problems)


# --- Prometheus and Grafana ------------------------------------------------


def rules_with(expr: str, **extra: Any) -> dict[str, Any]:
    rule = {"alert": "A", "expr": expr, "labels": {"severity": "warning"}}
    rule["annotations"] = {"summary": "s"}
    return {"groups": [{"name": "g", "rules": [{**rule, **extra}]}]}


def test_rules_that_pass(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "r.yml", rules_with("max(docstream_breaker_open) == 1"))
    assert prometheus.check_rules(path) == []


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (rules_with("sum(rate(docstream_events_total[5m])"), "does not parse"),
        (rules_with("docstream_breaker_opened == 1"), "exports no series docstream_breaker_opened"),
        (rules_with("up == 0", **{"for": "one minute"}), "for"),
        (rules_with("up == 0", labels={"severity": "page-me"}), "severity"),
        ({"groups": [{"name": "g", "rules": [{"alert": "A"}]}]}, "'expr' is a required property"),
    ],
)
def test_broken_rules_fail(tmp_path: Path, rules: dict[str, Any], expected: str) -> None:
    problems = prometheus.check_rules(write_yaml(tmp_path / "r.yml", rules))
    assert any(expected in p for p in problems), problems


def need_promtool() -> str:
    promtool = prometheus.find_promtool()
    if promtool:
        return promtool
    if strict_from(os.environ):  # CI: the rule tests must run, not be skipped
        pytest.fail("promtool not installed: `make promtool` installs it")
    pytest.skip("promtool not installed: `make promtool` installs it")


def test_promtool_runs_the_rule_unit_tests(tmp_path: Path) -> None:
    promtool = need_promtool()
    shutil.copytree(ROOT / "deploy" / "prometheus", tmp_path / "prometheus")
    rules = tmp_path / "prometheus" / "rules" / "docstream.rules.yml"
    tests = tmp_path / "prometheus" / "tests"
    assert prometheus.check_promtool(rules.parent, tests, promtool) == []
    rules.write_text(rules.read_text().replace("docstream_breaker_open) == 1", "x) == 1"))
    problems = prometheus.check_promtool(rules.parent, tests, promtool)
    assert any("FAILED" in p for p in problems)


def test_promtool_rejects_a_rule_file_prometheus_would_not_load(tmp_path: Path) -> None:
    promtool = need_promtool()
    shutil.copytree(ROOT / "deploy" / "prometheus", tmp_path / "prometheus")
    rules = tmp_path / "prometheus" / "rules" / "docstream.rules.yml"
    rules.write_text(rules.read_text().replace("for: 1m", "for: 1m\n        keep_firing: 5m", 1))
    problems = prometheus.check_promtool(rules.parent, tmp_path / "prometheus" / "tests", promtool)
    assert any(p.startswith("promtool check rules:") for p in problems), problems


def test_promtool_is_found_where_the_makefile_says_and_else_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "promtool"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert prometheus.find_promtool({"PROMTOOL": str(fake)}) == str(fake)
    monkeypatch.setattr(prometheus.sys, "executable", str(tmp_path / "python"))
    assert prometheus.find_promtool({}) == str(fake), "beside the venv's python"
    prom = ROOT / "deploy" / "prometheus"
    with pytest.raises(Skipped, match="make promtool"):
        prometheus.check_promtool(prom / "rules", prom / "tests", None)
    missing = prometheus.check_promtool(prom / "rules", prom / "tests", str(tmp_path / "nope"))
    assert missing and "is not an executable" in missing[0]


# --- strict: in CI a skipped check fails -----------------------------------


def test_a_skip_fails_only_when_strict() -> None:
    skipped = Outcome("needs a tool", 0.0, skipped="tool missing")
    broken = Outcome("broken", 0.0, problems=["x"])
    assert not skipped.fails(strict=False) and skipped.fails(strict=True)
    assert broken.fails(strict=False) and broken.fails(strict=True)
    assert not Outcome("fine", 0.0).fails(strict=True)


def test_strict_comes_from_the_flag_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing_tool() -> list[str]:
        raise Skipped("promtool not installed")

    checks = [Check("passes", list), Check("needs a tool", missing_tool)]
    monkeypatch.setattr("tools.validate_deploy.__main__.all_checks", lambda root: checks)
    root = ["--root", str(tmp_path)]
    assert main(root, env={}) == 0
    assert main(root, env={"VALIDATE_DEPLOY_STRICT": "0"}) == 0
    assert main([*root, "--strict"], env={}) == 1
    assert main(root, env={"VALIDATE_DEPLOY_STRICT": "1"}) == 1
    out = capsys.readouterr().out
    assert "FAIL  needs a tool" in out and "strict: a failure" in out
    assert "1 failed, strict" in out


def test_a_misspelt_strict_setting_is_an_error_not_off() -> None:
    assert strict_from({}) is False
    assert strict_from({"VALIDATE_DEPLOY_STRICT": "true"}) is True
    with pytest.raises(SystemExit, match="VALIDATE_DEPLOY_STRICT"):
        strict_from({"VALIDATE_DEPLOY_STRICT": "ture"})


def test_a_broken_scrape_config_fails(tmp_path: Path) -> None:
    config = {"scrape_configs": [{"job_name": "a", "scrape_interval": "often"}, {"job_name": "a"}]}
    problems = prometheus.check_config(write_yaml(tmp_path / "prometheus.yml", config))
    assert any("scrape_interval" in p for p in problems)


def test_broken_dashboards_fail(tmp_path: Path) -> None:
    real = json.loads((ROOT / "deploy/grafana/dashboards/docstream-query.json").read_text())
    real["panels"][0]["targets"][0]["expr"] = "rate(docstream_queries_total[$__rate_interval])"
    real["panels"][1]["gridPos"]["x"] = 20
    (tmp_path / "a.json").write_text(json.dumps(real))
    (tmp_path / "b.json").write_text("{not json")
    problems = grafana.check_dashboards(tmp_path)
    assert any("exports no series docstream_queries_total" in p for p in problems)
    assert any("does not fit" in p for p in problems)
    assert any("b.json: cannot read JSON" in p for p in problems)


# --- Dockerfile ------------------------------------------------------------


def test_a_dockerfile_running_as_root_without_health_check_fails(tmp_path: Path) -> None:
    text = (ROOT / "Dockerfile").read_text()
    text = text.replace("USER 10001:10001", "USER root").replace("HEALTHCHECK", "# HEALTHCHECK")
    text = text.replace("COPY ops ops", "COPY opz opz")
    (tmp_path / "Dockerfile").write_text(text)
    problems = dockerfile.check_dockerfile(tmp_path / "Dockerfile")
    assert any("non-root USER" in p for p in problems)
    assert any("no HEALTHCHECK" in p for p in problems)
    assert any("opz does not exist" in p for p in problems)
