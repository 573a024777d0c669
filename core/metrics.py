"""Prometheus metrics shared by the stages. One registry (the default), served
at the API's `/metrics`. Names end in their unit, as Prometheus expects."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "docstream_events_total",
    "Events handled by a pipeline stage, by outcome (ok, skipped, dead_lettered, retried).",
    ["stage", "outcome"],
)
STAGE_SECONDS = Histogram(
    "docstream_stage_seconds",
    "Time a stage spent on one batch of events.",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram(
    "docstream_batch_size",
    "Events per batch a stage processed.",
    ["stage"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
SINK_UP = Gauge(
    "docstream_sink_up",
    "1 while the last write to a sink succeeded, 0 while it is failing.",
    ["sink"],
)
REGISTRY_UP = Gauge(
    "docstream_schema_registry_up",
    "1 while the schema registry answers a stage, 0 while the stage waits for it.",
    ["stage"],
)
REBUILD_CHUNKS = Counter(
    "docstream_rebuild_chunks_total",
    "Chunks a rebuild or a replay has written into its new generation.",
    ["target"],
)
REBUILD_LAG = Gauge(
    "docstream_rebuild_lag",
    "Events a rebuild (chunks.embedded) or a replay (documents) has still to read.",
    ["target"],
)
PROFILE = Gauge(
    "docstream_profile",
    "1 for the profile (model, chunk sizes) the worker chunks and embeds with; "
    "configured=false after a replay changed it and before the configuration says so.",
    ["model", "max_tokens", "overlap_tokens", "configured"],
)
BREAKER_OPEN = Gauge(
    "docstream_breaker_open",
    "1 while a sink's circuit breaker is open (its store is considered down).",
    ["sink"],
)
BREAKER_TRANSITIONS = Counter(
    "docstream_breaker_transitions_total",
    "Circuit breaker state changes, by the state entered.",
    ["sink", "state"],
)
CONSUMER_PAUSED = Gauge(
    "docstream_consumer_paused",
    "1 while a stage's consumer is paused waiting for its handler (back-pressure).",
    ["stage"],
)
CONSUMER_PAUSED_SINCE = Gauge(
    "docstream_consumer_paused_since_seconds",
    "Unix time a stage's consumer was paused for the batch in hand; 0 while it reads. "
    "With docstream_sink_up and docstream_breaker_open it tells a stage waiting for its "
    "store from one busy with a large batch (docstream status).",
    ["stage"],
)
ASSIGNED_PARTITIONS = Gauge(
    "docstream_assigned_partitions",
    "Partitions of its topic this worker holds for a stage (after the last rebalance).",
    ["stage"],
)
CONSUMER_LAG = Gauge(
    "docstream_consumer_lag",
    "Records behind the end of the partition, per stage and topic-partition.",
    ["stage", "topic", "partition"],
)
FRESHNESS_SECONDS = Histogram(
    "docstream_freshness_seconds",
    "From a document's occurred_at to the moment a sink holds its chunk.",
    ["sink"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900),
)
QUERY_SECONDS = Histogram(
    "docstream_query_stage_seconds",
    "Time per query stage (embed, dense, graph, total).",
    ["stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56),
)
QUERY_DEGRADED = Counter(
    "docstream_query_degraded_total",
    "Queries answered without one of the stores, by store.",
    ["store"],
)
QUERY_ERRORS = Counter(
    "docstream_query_errors_total",
    "Queries, and follow-mode rounds, ended by a bug of ours rather than a store's failure "
    "(which is docstream_query_degraded_total), by the stage that raised it "
    "(embed, dense, lexical, graph, answer, follow).",
    ["stage"],
)
QUERY_CANCELLED = Counter(
    "docstream_query_cancelled_total",
    "Streaming queries whose client went away; the work in flight was cancelled.",
)
QUERY_IN_FLIGHT = Gauge(
    "docstream_queries_in_flight",
    "Queries (SSE or JSON) being answered now; back to 0 once every one ended or was "
    "cancelled, so a value stuck above 0 with no traffic is a leaked query task.",
)
RATE_LIMITED = Counter(
    "docstream_rate_limited_total",
    "Requests refused with 429 by the per-client rate limit.",
)
HTTP_REQUESTS = Counter(
    "docstream_http_requests_total",
    "HTTP requests by route and status.",
    ["route", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "docstream_http_request_seconds",
    "HTTP request latency by route.",
    ["route", "method"],
)
SINK_BLOCKED = Gauge(
    "docstream_sink_blocked",
    "1 while a sink waits for the operator (its store keeps failing for `reason`: "
    "permission, disk_full, …), 0 once it writes again.",
    ["sink", "reason"],
)
# Follow mode of the query edge (api/follow/).
FOLLOWERS = Gauge(
    "docstream_followers",
    "Follow-mode queries this API process serves (connected, or kept for a reconnect).",
)
FOLLOW_NOTIFICATIONS = Counter(
    "docstream_follow_notifications_total",
    "Document versions every sink reported written, as the query edge learnt of them.",
)
FOLLOW_EVENTS = Counter(
    "docstream_follow_events_total",
    "Events sent to followers after their first answer, by kind (hit, retract).",
    ["kind"],
)
FOLLOW_DELAY_SECONDS = Histogram(
    "docstream_follow_delay_seconds",
    "From the last sink's write of a document to its event sent to a follower.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 1, 2, 5, 10),
)
FOLLOW_CLOSED = Counter(
    "docstream_follow_closed_total",
    "Followers refused or ended by the edge, by reason (over_cap, dropped, expired).",
    ["reason"],
)
EMBEDDER_BACKEND = Gauge(
    "docstream_embedder_backend",
    "1 for the inference backend the embedder runs (torch, onnx, onnx-int8).",
    ["backend"],
)
