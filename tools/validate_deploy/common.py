"""What several checks share: reading YAML and JSON into problems instead of
tracebacks, the metric names core/metrics.py exports, PromQL parsing, and the
environment variables core/settings.py reads."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator, Draft202012Validator
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

SCHEMAS = Path(__file__).resolve().parents[2] / "deploy" / "schemas"
# Names (not values) of the app's variables: anything else in a docstream
# container's environment with these prefixes is a typo the app ignores.
APP_PREFIXES = ("DOCSTREAM_", "KAFKA_", "NEO4J_", "QDRANT_", "SCHEMA_REGISTRY_")
# Set by the image for itself, not read through core/settings.py.
IMAGE_VARIABLES = frozenset({"DOCSTREAM_IMAGE_VARIANT"})
# Grafana's interval variables, replaced by a duration before parsing.
GRAFANA_INTERVAL = re.compile(r"\$(__rate_interval|__interval|__range)\b|\$\{(__\w+)\}")


class LoadError(Exception):
    """A file that cannot be read or parsed; its message is the problem."""


def load_yaml_documents(path: Path) -> list[Any]:
    try:
        return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    except (OSError, yaml.YAMLError) as exc:
        raise LoadError(f"{path.name}: cannot read YAML: {exc}") from exc


def load_yaml(path: Path) -> Any:
    documents = load_yaml_documents(path)
    if len(documents) != 1:
        raise LoadError(f"{path.name}: expected one YAML document, found {len(documents)}")
    return documents[0]


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LoadError(f"{path.name}: cannot read JSON: {exc}") from exc


@cache
def schema_validator(name: str) -> Validator:
    """A validator for a schema vendored in deploy/schemas (see its README)."""
    schema = json.loads((SCHEMAS / name).read_text())
    if "2020-12" in schema.get("$schema", ""):
        return Draft202012Validator(schema)
    return Draft7Validator(schema)


def schema_problems(name: str, instance: Any, label: str) -> list[str]:
    validator = schema_validator(name)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    problems = []
    for error in errors:
        message = _message(error)
        if error.validator == "unevaluatedProperties":
            # 2020-12 lists every key of an object that failed elsewhere as
            # "unevaluated"; only keys the schema does not know are news.
            unknown = _unknown_keys(error, validator.schema)
            if not unknown:
                continue
            message = f"unknown keys {unknown}"
        problems.append(f"{label}: {_where(error.absolute_path)}: {message}")
    return problems


def _unknown_keys(error: ValidationError, root: dict[str, Any]) -> list[str]:
    known, patterns = _declared(error.schema, root)
    instance = error.instance if isinstance(error.instance, dict) else {}
    return [k for k in instance if k not in known and not any(re.search(p, k) for p in patterns)]


def _declared(schema: Any, root: dict[str, Any], depth: int = 0) -> tuple[set[str], set[str]]:
    """Property names and patterns a schema declares, through local $refs and
    its allOf/anyOf/oneOf branches."""
    if not isinstance(schema, dict) or depth > 8:
        return set(), set()
    known = set(schema.get("properties") or {})
    patterns = set(schema.get("patternProperties") or {})
    branches = [b for key in ("allOf", "anyOf", "oneOf") for b in schema.get(key) or []]
    ref = schema.get("$ref", "")
    if ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        branches.append(target)
    for branch in branches:
        more, more_patterns = _declared(branch, root, depth + 1)
        known |= more
        patterns |= more_patterns
    return known, patterns


def _message(error: ValidationError) -> str:
    """For "valid under none of oneOf/anyOf", also why not under each."""
    message = _shorten(error.message)
    if not error.context:
        return message
    reasons = dict.fromkeys(_shorten(e.message) for e in error.context)
    return f"{message} ({'; or '.join(list(reasons)[:4])})"


def _shorten(message: str, limit: int = 240) -> str:
    # jsonschema repeats the whole offending value in its message.
    return message if len(message) <= limit else message[: limit - 3] + "..."


def _where(path: Any) -> str:
    return "/".join(str(p) for p in path) or "(top)"


@cache
def exported_metrics() -> frozenset[str]:
    """Every series name core/metrics.py exposes: counters as *_total,
    histograms as *_bucket/_sum/_count, gauges as they are."""
    from prometheus_client.metrics import MetricWrapperBase

    import core.metrics

    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "gauge": ("",),
    }
    names: set[str] = set()
    for value in vars(core.metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return frozenset(names)


def promql_problems(expr: str, label: str) -> list[str]:
    """Parse errors, and docstream_* series that core/metrics.py does not export."""
    import promql_parser

    try:
        parsed = promql_parser.parse(GRAFANA_INTERVAL.sub("5m", expr))
    except ValueError as exc:
        return [f"{label}: PromQL does not parse: {exc}"]
    names: list[str] = []

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.append(node.name)
        return True

    promql_parser.walk(parsed, visit)
    unknown = sorted({n for n in names if n.startswith("docstream_")} - exported_metrics())
    return [f"{label}: core/metrics.py exports no series {n}" for n in unknown]


@cache
def settings_variables() -> frozenset[str]:
    """The variables Settings.from_env reads, found by letting it read a
    mapping that records every key asked for."""
    from core.settings import Settings

    class Recorder(dict[str, str]):
        def __init__(self) -> None:
            super().__init__()
            self.seen: set[str] = set()

        def get(self, key: str, default: Any = None) -> Any:
            self.seen.add(key)
            return default

    recorder = Recorder()
    Settings.from_env(recorder)
    return frozenset(recorder.seen) | IMAGE_VARIABLES


def unknown_variables(names: Iterator[str] | list[str], label: str) -> list[str]:
    known = settings_variables()
    return [
        f"{label}: {name} is not a variable core/settings.py reads"
        for name in sorted(set(names))
        if name.startswith(APP_PREFIXES) and name not in known
    ]
