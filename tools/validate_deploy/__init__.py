"""Offline checks of the deployment assets (`make validate-deploy`,
`python -m tools.validate_deploy`): the Dockerfile, docker-compose.yml, the
rendered Kubernetes overlays, the Prometheus configuration and rules, and the
Grafana provisioning and dashboards. Nothing here needs a Docker engine, a
cluster or the network; docs/DEPLOYMENT.md says what each check covers and
what it cannot. `install_promtool.sh` installs promtool for the rule checks
(`make promtool`).

Each check returns the problems it found, one line each; none means it passed.
"""

from __future__ import annotations

from tools.validate_deploy.runner import Check, Outcome, Skipped, all_checks, run_checks

__all__ = ["Check", "Outcome", "Skipped", "all_checks", "run_checks"]
