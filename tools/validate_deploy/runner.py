"""The list of checks over a repository checkout, and running them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

Problems = list[str]


class Skipped(Exception):
    """A check that cannot run here (a tool is missing): reported, and failed
    only under `strict` (CI, where every tool is installed)."""


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[], Problems]


@dataclass
class Outcome:
    name: str
    seconds: float
    problems: Problems = field(default_factory=list)
    skipped: str = ""

    @property
    def status(self) -> str:
        if self.problems:
            return "FAIL"
        return "skip" if self.skipped else "ok"

    def fails(self, strict: bool) -> bool:
        """Problems fail a run; so does a skip when strict: in CI a check that
        did not run (its tool missing) would otherwise pass unseen."""
        return bool(self.problems) or (strict and bool(self.skipped))


def run_checks(checks: list[Check]) -> list[Outcome]:
    outcomes = []
    for check in checks:
        started = time.perf_counter()
        outcome = Outcome(check.name, 0.0)
        try:
            outcome.problems = check.run()
        except Skipped as exc:
            outcome.skipped = str(exc)
        except Exception as exc:  # a crash in a check is a failure, not a traceback
            outcome.problems = [f"the check crashed: {type(exc).__name__}: {exc}"]
        outcome.seconds = time.perf_counter() - started
        outcomes.append(outcome)
    return outcomes


def all_checks(root: Path, promtool: str | None = None) -> list[Check]:
    """Every check over the checkout at `root`; `promtool` is the binary the
    rule unit tests run with (found as `prometheus.find_promtool` says if None)."""
    # Imported here so that `--help` works before the dev extra is installed.
    from tools.validate_deploy import compose, dockerfile, grafana, kube, prometheus

    prom = root / "deploy" / "prometheus"
    promtool = promtool or prometheus.find_promtool()
    compose_file = root / "docker-compose.yml"
    checks = [
        Check("Dockerfile", partial(dockerfile.check_dockerfile, root / "Dockerfile")),
        Check("compose: Compose Specification schema", partial(compose.check_schema, compose_file)),
        Check("compose: services, mounts, env names", partial(compose.check_policy, compose_file)),
        Check(
            "compose: docker-compose config",
            partial(compose.check_config, compose_file, root / ".env.example"),
        ),
    ]
    for overlay in kube.kustomizations(root / "k8s"):
        name = overlay.relative_to(root).as_posix()
        checks.append(Check(f"k8s: {name}", partial(kube.check_kustomization, overlay)))
    return [
        *checks,
        Check(
            "prometheus: compose scrape config",
            partial(prometheus.check_config, prom / "prometheus.yml"),
        ),
        Check(
            "prometheus: kubernetes scrape config",
            partial(prometheus.check_config, prom / "prometheus-kubernetes.yml"),
        ),
        Check("prometheus: alert rules", partial(prometheus.check_rules_dir, prom / "rules")),
        Check(
            "prometheus: promtool check and rule unit tests",
            partial(prometheus.check_promtool, prom / "rules", prom / "tests", promtool),
        ),
        Check(
            "prometheus: adapter rules",
            partial(prometheus.check_adapter, prom / "adapter-rules.yaml"),
        ),
        Check("grafana: provisioning", partial(grafana.check_provisioning, root)),
        Check(
            "grafana: dashboards",
            partial(grafana.check_dashboards, root / "deploy" / "grafana" / "dashboards"),
        ),
    ]
