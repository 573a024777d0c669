"""The operator's view of a running pipeline, for `docstream status` and
GET /admin/status (not `api/status.py`, which says where one document stands).

probes.py asks each part (Kafka, the stores, the worker) on its own within a
timeout; metrics.py reads the worker's Prometheus metrics; consumers.py says why
a consumer is paused; render.py writes the report as text."""

from ops.status.consumers import Signals, classify
from ops.status.metrics import histogram_quantile, local_metrics, pipeline_metrics, remote_metrics
from ops.status.probes import (
    Index,
    KafkaProbe,
    Probe,
    Stage,
    api_base,
    cli_status,
    collect,
    index_counts,
    lag,
    stage_groups,
    worker_status,
)
from ops.status.render import render, unreachable

__all__ = [
    "Index",
    "KafkaProbe",
    "Probe",
    "Signals",
    "Stage",
    "api_base",
    "classify",
    "cli_status",
    "collect",
    "histogram_quantile",
    "index_counts",
    "lag",
    "local_metrics",
    "pipeline_metrics",
    "remote_metrics",
    "render",
    "stage_groups",
    "unreachable",
    "worker_status",
]
