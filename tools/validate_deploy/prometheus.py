"""Prometheus: the scrape configurations and rule files against SchemaStore's
schemas (vendored in deploy/schemas), every expression parsed by a PromQL
parser, and every docstream_* series checked against core/metrics.py. Then
Prometheus' own promtool checks the rules and runs their unit tests in
deploy/prometheus/tests. No Python package ships promtool: `make promtool`
puts it in the venv (the Makefile says from where and why)."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tools.validate_deploy.common import (
    LoadError,
    load_yaml,
    promql_problems,
    schema_problems,
)
from tools.validate_deploy.runner import Problems, Skipped

SEVERITIES = ("critical", "warning", "info")
# prometheus-adapter's templates, replaced by PromQL before parsing.
ADAPTER_TEMPLATE = re.compile(r"<<\.(\w+)>>")


def check_config(path: Path) -> Problems:
    try:
        config = load_yaml(path)
    except LoadError as exc:
        return [str(exc)]
    problems = schema_problems("prometheus.json", config, path.name)
    if problems or not isinstance(config, dict):
        return problems
    jobs = [job.get("job_name") for job in config.get("scrape_configs") or []]
    problems += [f"{path.name}: job_name {j} repeated" for j in set(jobs) if jobs.count(j) > 1]
    rules = path.parent / "rules"
    for pattern in config.get("rule_files") or []:
        name = Path(pattern).name
        if not any(fnmatch.fnmatch(p.name, name) for p in rules.glob("*")):
            problems.append(f"{path.name}: rule_files {pattern} matches nothing in {rules.name}/")
    return problems


def check_rules_dir(directory: Path) -> Problems:
    files = sorted(directory.glob("*.yml")) + sorted(directory.glob("*.yaml"))
    if not files:
        return [f"{directory.name}/: no rule files"]
    problems: Problems = []
    seen: set[str] = set()
    for path in files:
        problems += check_rules(path, seen)
    return problems


def check_rules(path: Path, seen_alerts: set[str] | None = None) -> Problems:
    seen = set() if seen_alerts is None else seen_alerts
    try:
        document = load_yaml(path)
    except LoadError as exc:
        return [str(exc)]
    problems = schema_problems("prometheus.rules.json", document, path.name)
    if problems or not isinstance(document, dict):
        return problems
    groups = document.get("groups") or []
    if not groups:
        return [f"{path.name}: no rule groups"]
    names = [g["name"] for g in groups]
    problems += [f"{path.name}: group {n} repeated" for n in set(names) if names.count(n) > 1]
    for group in groups:
        for rule in group.get("rules") or []:
            problems += _rule_problems(path, group["name"], rule, seen)
    return problems


def _rule_problems(path: Path, group: str, rule: dict[str, Any], seen: set[str]) -> Problems:
    name = rule.get("alert") or rule.get("record") or "?"
    label = f"{path.name}: {group}/{name}"
    problems = promql_problems(rule["expr"], label)
    if "alert" not in rule:
        return problems
    if name in seen:
        problems.append(f"{label}: alert name repeated")
    seen.add(name)
    severity = (rule.get("labels") or {}).get("severity")
    if severity not in SEVERITIES:
        problems.append(f"{label}: labels.severity should be one of {SEVERITIES}")
    if not (rule.get("annotations") or {}).get("summary"):
        problems.append(f"{label}: no summary annotation")
    return problems


def check_adapter(path: Path) -> Problems:
    """prometheus-adapter rules: the series they select exist and the query,
    with its templates filled in, parses."""
    try:
        document = load_yaml(path)
    except LoadError as exc:
        return [str(exc)]
    rules = document.get("rules") if isinstance(document, dict) else None
    if not rules:
        return [f"{path.name}: no rules"]
    problems: Problems = []
    for index, rule in enumerate(rules):
        label = f"{path.name}: rules/{index}"
        problems += promql_problems(rule.get("seriesQuery", ""), f"{label} seriesQuery")
        query = ADAPTER_TEMPLATE.sub(_adapter_placeholder, rule.get("metricsQuery", ""))
        problems += promql_problems(query, f"{label} metricsQuery")
    return problems


def _adapter_placeholder(match: re.Match[str]) -> str:
    return {"Series": "docstream_http_requests_total", "GroupBy": "pod"}.get(
        match.group(1), 'pod="x"'
    )


def find_promtool(env: Mapping[str, str] | None = None) -> str | None:
    """$PROMTOOL (the Makefile sets it), else the one `make promtool` put
    beside the venv's python, else one on PATH."""
    env = os.environ if env is None else env
    if env.get("PROMTOOL"):
        return env["PROMTOOL"]
    beside_python = Path(sys.executable).parent / "promtool"
    if beside_python.is_file():
        return str(beside_python)
    return shutil.which("promtool")


def check_promtool(rules: Path, tests: Path, promtool: str | None) -> Problems:
    if not promtool:
        raise Skipped("promtool not installed (`make promtool` installs it)")
    if not shutil.which(promtool):
        # Named explicitly but not there: a broken setup, not a tool left out.
        return [f"promtool {promtool} is not an executable (`make promtool` installs it)"]
    problems: Problems = []
    for command in (
        ["check", "rules", *map(str, sorted(rules.glob("*.yml")))],
        ["test", "rules", *map(str, sorted(tests.glob("*.yml")))],
    ):
        result = subprocess.run(
            [promtool, *command], capture_output=True, text=True, timeout=120, cwd=tests
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).splitlines()
            label = f"promtool {' '.join(command[:2])}"
            problems += [f"{label}: {line.rstrip()}" for line in output if line.strip()]
    return problems
