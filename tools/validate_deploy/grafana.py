"""Grafana: the provisioning files, where docker-compose.yml mounts them, and
every dashboard: it parses, its panels fit the grid and have unique ids, their
datasource is the dashboard's variable or the provisioned one, and every query
parses as PromQL over series core/metrics.py exports (or DCGM's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tools.validate_deploy.common import LoadError, load_json, load_yaml, promql_problems
from tools.validate_deploy.runner import Problems

GRID_WIDTH = 24
DASHBOARDS_IN_CONTAINER = "/etc/grafana/dashboards"


def check_provisioning(root: Path) -> Problems:
    provisioning = root / "deploy" / "grafana" / "provisioning"
    try:
        datasources = load_yaml(provisioning / "datasources" / "prometheus.yml")
        providers = load_yaml(provisioning / "dashboards" / "docstream.yml")
        compose = load_yaml(root / "docker-compose.yml")
    except LoadError as exc:
        return [str(exc)]
    problems = []
    sources = datasources.get("datasources") or []
    if not any(s.get("type") == "prometheus" and s.get("uid") for s in sources):
        problems.append("datasources: no prometheus datasource with a uid")
    grafana_volumes = compose.get("services", {}).get("grafana", {}).get("volumes") or []
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana_volumes if isinstance(v, str)}
    for provider in providers.get("providers") or []:
        path = (provider.get("options") or {}).get("path")
        if path != DASHBOARDS_IN_CONTAINER or path not in mounts:
            problems.append(f"dashboards provider path {path} is not where compose mounts them")
    if "/etc/grafana/provisioning" not in mounts:
        problems.append("docker-compose.yml does not mount the provisioning folder")
    return problems


def check_dashboards(directory: Path) -> Problems:
    paths = sorted(directory.glob("*.json"))
    if not paths:
        return [f"{directory.name}/: no dashboards"]
    problems: Problems = []
    uids: dict[str, str] = {}
    for path in paths:
        try:
            dashboard = load_json(path)
        except LoadError as exc:
            problems.append(str(exc))
            continue
        problems += check_dashboard(path.name, dashboard)
        uid = dashboard.get("uid", "")
        if uid in uids:
            problems.append(f"{path.name}: uid {uid} also used by {uids[uid]}")
        uids[uid] = path.name
    return problems


def check_dashboard(label: str, dashboard: Any) -> Problems:
    if not isinstance(dashboard, dict):
        return [f"{label}: not a JSON object"]
    problems = [
        f"{label}: no {key}"
        for key in ("uid", "title", "panels", "schemaVersion")
        if key not in dashboard
    ]
    if len(dashboard.get("uid", "")) > 40:
        problems.append(f"{label}: uid longer than Grafana's 40 characters")
    variables = {v.get("name") for v in (dashboard.get("templating") or {}).get("list") or []}
    ids: set[int] = set()
    for panel in _panels(dashboard.get("panels") or []):
        where = f"{label}: panel {panel.get('id')} {panel.get('title', '')!r}"
        if panel.get("id") in ids:
            problems.append(f"{where}: id repeated")
        ids.add(panel.get("id", -1))
        grid = panel.get("gridPos") or {}
        if grid.get("x", 0) + grid.get("w", 0) > GRID_WIDTH or not grid.get("h"):
            problems.append(f"{where}: gridPos {grid} does not fit the {GRID_WIDTH}-column grid")
        problems += _target_problems(where, panel, variables)
    return problems


def _panels(panels: list[Any]) -> list[dict[str, Any]]:
    flat = []
    for panel in panels:
        flat.append(panel)
        flat += _panels(panel.get("panels") or [])  # panels of collapsed rows
    return flat


def _target_problems(where: str, panel: dict[str, Any], variables: set[Any]) -> Problems:
    if panel.get("type") == "row":
        return []
    targets = panel.get("targets") or []
    if not targets:
        return [f"{where}: no queries"]
    problems = []
    for target in [panel, *targets]:
        uid = (target.get("datasource") or {}).get("uid", "")
        if uid.startswith("$") and uid.strip("${}") not in variables:
            problems.append(f"{where}: datasource {uid} is not a dashboard variable")
    for target in targets:
        problems += promql_problems(target.get("expr", ""), f"{where} {target.get('refId')}")
    return problems
