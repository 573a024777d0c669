"""Configuration as small frozen value objects, read once from the environment.

Every setting has a default that works on one machine with the local stack
(`make services-up`, or `python -m tools.stack up`), and every default can be
overridden by the same environment variable in a container, a cluster or a test.
Settings are passed explicitly to whatever needs them; nothing reads the
environment later.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

N = TypeVar("N", int, float)


def _number(env: Mapping[str, str], key: str, default: N, kind: Callable[[str], N]) -> N:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError as exc:
        raise ValueError(f"{key} must be a {kind.__name__}, got {raw!r}") from exc


def _int(env: Mapping[str, str], key: str, default: int) -> int:
    return _number(env, key, default, int)


def _float(env: Mapping[str, str], key: str, default: float) -> float:
    return _number(env, key, default, float)


class Secret:
    """A password, key or token. Its value is only given by `reveal()`: repr,
    str and so a settings object in a log line, an error message or a status
    page say only whether it is set."""

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret(set)" if self._value else "Secret(unset)"

    __str__ = __repr__


def _secret(env: Mapping[str, str], key: str) -> Secret:
    """`key`'s value, or the content of the file `key`_FILE names (a mounted
    Kubernetes Secret, a Docker secret); one trailing newline is dropped.
    Errors name the variable and the path, never a value."""
    value, file = env.get(key, ""), env.get(f"{key}_FILE", "").strip()
    if value and file:
        raise ValueError(f"set {key} or {key}_FILE, not both")
    if not file:
        return Secret(value)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{key}_FILE={file} cannot be read: {exc.strerror}") from None
    return Secret(text[:-1] if text.endswith("\n") else text)


def _path(env: Mapping[str, str], key: str) -> Path | None:
    value = env.get(key, "").strip()
    return Path(value).expanduser() if value else None


KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaSecurity:
    """How every Kafka client of docstream connects: the security protocol,
    SASL's mechanism and credentials, the CA that signed the brokers'
    certificates (the system's CAs without one) and a client certificate for
    mutual TLS. core/kafka/security.py turns it into each client library's
    configuration, once."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    username: str = ""
    password: Secret = field(default_factory=Secret)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    key_password: Secret = field(default_factory=Secret)

    def __post_init__(self) -> None:
        if self.protocol not in KAFKA_PROTOCOLS:
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL must be one of {', '.join(KAFKA_PROTOCOLS)}, "
                f"got {self.protocol!r}"
            )
        if self.sasl and self.sasl_mechanism not in SASL_MECHANISMS:
            raise ValueError(
                f"KAFKA_SASL_MECHANISM must be one of {', '.join(SASL_MECHANISMS)}, "
                f"got {self.sasl_mechanism!r}"
            )
        if self.sasl and not (self.username and self.password):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.protocol} needs KAFKA_SASL_USERNAME and "
                "KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE)"
            )
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError(
                "a client certificate needs both KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE"
            )
        if not self.tls and (self.ca_file or self.cert_file):
            raise ValueError(
                f"KAFKA_SSL_* files are set but KAFKA_SECURITY_PROTOCOL={self.protocol} has no TLS "
                "(use SSL or SASL_SSL)"
            )

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    def describe(self) -> str:
        """The security in words, for status and logs: never a secret."""
        parts = [self.protocol]
        if self.sasl:
            parts.append(f"{self.sasl_mechanism} as {self.username}")
        if self.ca_file:
            parts.append(f"CA {self.ca_file}")
        if self.cert_file:
            parts.append("client certificate")
        return ", ".join(parts)


@dataclass(frozen=True)
class Topics:
    """Topic names. A prefix lets several pipelines (or test runs) share a broker."""

    prefix: str = ""

    @property
    def documents(self) -> str:
        return f"{self.prefix}documents"

    @property
    def chunks(self) -> str:
        return f"{self.prefix}chunks"

    @property
    def chunks_embedded(self) -> str:
        return f"{self.prefix}chunks.embedded"

    @property
    def chunks_indexed(self) -> str:
        """What the sinks wrote: the notices follow mode of the query edge reads."""
        return f"{self.prefix}chunks.indexed"

    @staticmethod
    def dead_letter(topic: str) -> str:
        """Each stage dead-letters into `<its input topic>.dlq`."""
        return f"{topic}.dlq"

    def all(self) -> list[str]:
        sources = [self.documents, self.chunks, self.chunks_embedded]
        return sources + [self.dead_letter(t) for t in sources] + [self.chunks_indexed]


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = "127.0.0.1:9092"
    topics: Topics = field(default_factory=Topics)
    partitions: int = 3
    group_id: str = "docstream"
    # The largest event (compressed, as the broker counts) a docstream topic
    # takes: set on the topics docstream creates, and what its producers allow.
    max_message_bytes: int = 8 * 1024 * 1024
    security: KafkaSecurity = field(default_factory=KafkaSecurity)
    # The topics docstream creates: replicas of each partition, and how many of
    # them must hold a write before it counts (with acks=all, one broker of
    # three can be lost without losing or refusing a write at 3 and 2).
    replication_factor: int = 1
    min_insync_replicas: int = 1

    def __post_init__(self) -> None:
        if self.replication_factor < 1:
            raise ValueError(
                f"KAFKA_REPLICATION_FACTOR must be at least 1, got {self.replication_factor}"
            )
        if not 1 <= self.min_insync_replicas <= self.replication_factor:
            raise ValueError(
                "KAFKA_MIN_INSYNC_REPLICAS must be from 1 to KAFKA_REPLICATION_FACTOR "
                f"({self.replication_factor}), got {self.min_insync_replicas}"
            )

    @property
    def dead_letter_max_bytes(self) -> int:
        """A dead letter carries a whole original event plus its reason."""
        return 2 * self.max_message_bytes


@dataclass(frozen=True)
class Neo4jSettings:
    """TLS comes from the URI's scheme (`neo4j+s://` trusts the system's CAs,
    `neo4j+ssc://` any certificate) or, with a plain `bolt://`/`neo4j://`,
    from `ca_file`: encrypted, trusting that CA only."""

    uri: str = "bolt://127.0.0.1:7687"
    user: str = ""
    password: Secret = field(default_factory=Secret)
    # Names this deployment's graph in the database: its generations are
    # `<graph>:<n>`, so several deployments (or test runs) can share one Neo4j.
    graph: str = "docstream"
    ca_file: Path | None = None

    def __post_init__(self) -> None:
        if self.ca_file is not None and "+s" in self.uri.split("://", 1)[0]:
            raise ValueError(
                "NEO4J_CA_FILE goes with a bolt:// or neo4j:// URI: a +s or +ssc scheme "
                "chooses its own trust (the driver refuses both)"
            )

    @property
    def auth(self) -> tuple[str, str] | None:
        return (self.user, self.password.reveal()) if self.user else None

    @property
    def tls(self) -> bool:
        return self.ca_file is not None or "+s" in self.uri.split("://", 1)[0]


@dataclass(frozen=True)
class QdrantSettings:
    """`url` names a Qdrant server; without it Qdrant runs embedded at `path`,
    with the `engine` "edge" (Qdrant Edge: indexed) or "local" (qdrant-client's
    local mode: every query scans every point)."""

    url: str = ""
    path: Path = Path(".stack/qdrant")
    collection: str = "docstream_chunks"
    api_key: Secret = field(default_factory=Secret)
    engine: str = "edge"
    # A server over https whose certificate a private CA signed.
    ca_file: Path | None = None
    # A server's collections (a cluster's, that is): shards, copies of each
    # shard on distinct nodes, and how many copies must confirm a write. At
    # 2 and 1 every shard survives one node down and writes go on meanwhile.
    # The embedded engine is one shard in one process: it ignores them.
    shards: int = 1
    replication_factor: int = 1
    write_consistency: int = 1

    def __post_init__(self) -> None:
        if self.engine not in ("edge", "local"):
            raise ValueError(f"QDRANT_ENGINE must be edge or local, got {self.engine!r}")
        for name, value in (
            ("SHARDS", self.shards),
            ("REPLICATION_FACTOR", self.replication_factor),
        ):
            if value < 1:
                raise ValueError(f"QDRANT_{name} must be at least 1, got {value}")
        if not 1 <= self.write_consistency <= self.replication_factor:
            raise ValueError(
                "QDRANT_WRITE_CONSISTENCY must be from 1 to QDRANT_REPLICATION_FACTOR "
                f"({self.replication_factor}), got {self.write_consistency}"
            )

    @property
    def embedded(self) -> bool:
        return not self.url


@dataclass(frozen=True)
class EmbedderSettings:
    model: str = "all-MiniLM-L6-v2"
    device: str = "auto"  # auto | cpu | cuda
    batch_size: int = 64
    batch_within_s: float = 0.05
    # auto | torch | onnx | onnx-int8 (streams/embedding/backend.py chooses).
    backend: str = "auto"
    # Where exported ONNX files are cached (DOCSTREAM_MODEL_CACHE).
    model_cache: Path = Path(".stack/models")
    # ONNX Runtime's intra-op threads; 0 = every core of the machine.
    threads: int = 0

    def __post_init__(self) -> None:
        if self.backend not in ("auto", "torch", "onnx", "onnx-int8"):
            raise ValueError(
                "DOCSTREAM_EMBED_BACKEND must be auto, torch, onnx or onnx-int8, "
                f"got {self.backend!r}"
            )


@dataclass(frozen=True)
class SinkSettings:
    """How each sink consumer batches `chunks.embedded`: as many records as the
    backlog holds, up to `batch_size`, waiting at most `batch_within_s` for the
    first. A sink's cost is mostly per write (one statement, one transaction),
    so a backlog is best written in few, large batches."""

    batch_size: int = 1000
    batch_within_s: float = 0.05


@dataclass(frozen=True)
class ChunkerSettings:
    """Chunk sizes in tokens of the embedding model's tokenizer, special tokens
    excluded. The chunker caps `max_tokens` at what the model reads (254 for
    all-MiniLM-L6-v2: 256 word pieces less [CLS] and [SEP]). The last whole
    sentences of a chunk, up to `overlap_tokens`, open the next one."""

    max_tokens: int = 200
    overlap_tokens: int = 32
    # A longer text is refused (413 at the API, a dead letter in the stream):
    # one document must not turn into tens of thousands of chunks.
    max_text_bytes: int = 4 * 1024 * 1024
    # The chunker takes up to this many documents at a time and waits once for
    # Kafka to acknowledge all their chunks, not once per document; a batch is
    # cut after `batch_within_s` when fewer are waiting.
    batch_docs: int = 32
    batch_within_s: float = 0.05

    def __post_init__(self) -> None:
        if self.batch_docs < 1:
            raise ValueError(f"chunk batch_docs must be at least 1, got {self.batch_docs}")
        if self.max_tokens < 1:
            raise ValueError(f"chunk max_tokens must be at least 1, got {self.max_tokens}")
        if not 0 <= self.overlap_tokens < self.max_tokens:
            raise ValueError(
                f"chunk overlap_tokens must be from 0 to less than max_tokens "
                f"({self.max_tokens}), got {self.overlap_tokens}"
            )


@dataclass(frozen=True)
class ApiSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    # Writes (POST/DELETE /documents) need one of these keys; none = writes refused.
    api_keys: frozenset[str] = frozenset()
    reads_need_key: bool = False
    max_body_bytes: int = 5 * 1024 * 1024
    max_batch: int = 1000
    intake_timeout_s: float = 10.0
    # Browser origins allowed to call the API (CORS); empty = no cross-origin access.
    cors_origins: tuple[str, ...] = ()
    # Requests per second per client (API key, else address); 0 turns limiting off.
    rate_limit_per_s: float = 20.0
    rate_limit_burst: int = 40
    # A query skips (and reports as degraded) a stage slower than these.
    query_embed_timeout_s: float = 5.0
    query_store_timeout_s: float = 2.0
    max_k: int = 100
    # SSE comment lines on an idle stream, so proxies do not close it.
    sse_heartbeat_s: float = 15.0
    # How long an EventSource waits before it reconnects (the `retry:` field).
    sse_retry_ms: int = 3000
    # Follow mode (GET /query?follow=true): followers one API process serves
    # (more get 429), how long a disconnected follower's events are kept for a
    # reconnect with Last-Event-ID, how many events are kept for it, and how
    # many unsent events a follower that stops reading may have before it is
    # dropped.
    follow_max: int = 1000
    follow_resume_s: float = 60.0
    follow_replay_events: int = 500
    follow_queue_events: int = 1000


# The chunker is a Faust agent and must run in every worker of a group (Faust
# expects its members alike); the batch stages can be left out per worker.
WORKER_STAGES = ("chunker", "embedder", "qdrant-sink", "neo4j-sink")


def worker_stages(value: str) -> tuple[str, ...]:
    """DOCSTREAM_WORKER_STAGES: a comma list out of WORKER_STAGES, chunker included."""
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in WORKER_STAGES]
    if unknown:
        raise ValueError(
            f"DOCSTREAM_WORKER_STAGES names {', '.join(unknown)}: "
            f"the stages are {', '.join(WORKER_STAGES)}"
        )
    if "chunker" not in names:
        raise ValueError(
            "DOCSTREAM_WORKER_STAGES must include chunker: every worker of a group runs it"
        )
    return names


@dataclass(frozen=True)
class Settings:
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    neo4j: Neo4jSettings = field(default_factory=Neo4jSettings)
    qdrant: QdrantSettings = field(default_factory=QdrantSettings)
    embedder: EmbedderSettings = field(default_factory=EmbedderSettings)
    sink: SinkSettings = field(default_factory=SinkSettings)
    chunker: ChunkerSettings = field(default_factory=ChunkerSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    stack_dir: Path = Path(".stack")
    log_level: str = "INFO"
    # Set: events use the Confluent wire format with ids from this registry.
    schema_registry_url: str = ""
    # Which stages this worker runs (DOCSTREAM_WORKER_STAGES): one worker runs
    # them all; a scaled-out group can split them (docs/OPERATIONS.md).
    worker_stages: tuple[str, ...] = WORKER_STAGES

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        stack_dir = Path(env.get("DOCSTREAM_STACK_DIR", ".stack"))
        return cls(
            kafka=KafkaSettings(
                bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
                topics=Topics(prefix=env.get("DOCSTREAM_TOPIC_PREFIX", "")),
                partitions=_int(env, "DOCSTREAM_PARTITIONS", 3),
                group_id=env.get("DOCSTREAM_GROUP_ID", "docstream"),
                max_message_bytes=_int(env, "DOCSTREAM_MAX_MESSAGE_BYTES", 8 * 1024 * 1024),
                security=kafka_security(env),
                replication_factor=_int(env, "KAFKA_REPLICATION_FACTOR", 1),
                min_insync_replicas=_int(env, "KAFKA_MIN_INSYNC_REPLICAS", 1),
            ),
            neo4j=Neo4jSettings(
                uri=env.get("NEO4J_URI", "bolt://127.0.0.1:7687"),
                user=env.get("NEO4J_USER", ""),
                password=_secret(env, "NEO4J_PASSWORD"),
                graph=env.get("NEO4J_GRAPH", "docstream"),
                ca_file=_path(env, "NEO4J_CA_FILE"),
            ),
            qdrant=QdrantSettings(
                url=env.get("QDRANT_URL", ""),
                path=Path(env.get("QDRANT_PATH", str(stack_dir / "qdrant"))),
                collection=env.get("QDRANT_COLLECTION", "docstream_chunks"),
                api_key=_secret(env, "QDRANT_API_KEY"),
                engine=env.get("QDRANT_ENGINE", "edge"),
                ca_file=_path(env, "QDRANT_CA_FILE"),
                shards=_int(env, "QDRANT_SHARDS", 1),
                replication_factor=_int(env, "QDRANT_REPLICATION_FACTOR", 1),
                write_consistency=_int(env, "QDRANT_WRITE_CONSISTENCY", 1),
            ),
            embedder=EmbedderSettings(
                model=env.get("DOCSTREAM_EMBED_MODEL", "all-MiniLM-L6-v2"),
                device=env.get("DOCSTREAM_EMBED_DEVICE", "auto"),
                batch_size=_int(env, "DOCSTREAM_EMBED_BATCH", 64),
                batch_within_s=_float(env, "DOCSTREAM_EMBED_WITHIN_S", 0.05),
                backend=env.get("DOCSTREAM_EMBED_BACKEND", "auto").lower(),
                model_cache=Path(env.get("DOCSTREAM_MODEL_CACHE", str(stack_dir / "models"))),
                threads=_int(env, "DOCSTREAM_EMBED_THREADS", 0),
            ),
            sink=SinkSettings(
                batch_size=_int(env, "DOCSTREAM_SINK_BATCH", 1000),
                batch_within_s=_float(env, "DOCSTREAM_SINK_WITHIN_S", 0.05),
            ),
            chunker=ChunkerSettings(
                max_tokens=_int(env, "DOCSTREAM_CHUNK_MAX_TOKENS", 200),
                overlap_tokens=_int(env, "DOCSTREAM_CHUNK_OVERLAP_TOKENS", 32),
                max_text_bytes=_int(env, "DOCSTREAM_MAX_TEXT_BYTES", 4 * 1024 * 1024),
                batch_docs=_int(env, "DOCSTREAM_CHUNK_BATCH", 32),
                batch_within_s=_float(env, "DOCSTREAM_CHUNK_WITHIN_S", 0.05),
            ),
            api=ApiSettings(
                host=env.get("DOCSTREAM_API_HOST", "127.0.0.1"),
                port=_int(env, "DOCSTREAM_API_PORT", 8000),
                api_keys=frozenset(
                    k.strip()
                    for k in _secret(env, "DOCSTREAM_API_KEYS").reveal().split(",")
                    if k.strip()
                ),
                reads_need_key=env.get("DOCSTREAM_READS_NEED_KEY", "").lower() in ("1", "true"),
                max_body_bytes=_int(env, "DOCSTREAM_MAX_BODY_BYTES", 5 * 1024 * 1024),
                max_batch=_int(env, "DOCSTREAM_MAX_BATCH", 1000),
                intake_timeout_s=_float(env, "DOCSTREAM_INTAKE_TIMEOUT_S", 10.0),
                cors_origins=tuple(
                    o.strip() for o in env.get("DOCSTREAM_CORS_ORIGINS", "").split(",") if o.strip()
                ),
                rate_limit_per_s=_float(env, "DOCSTREAM_RATE_LIMIT_PER_S", 20.0),
                rate_limit_burst=_int(env, "DOCSTREAM_RATE_LIMIT_BURST", 40),
                query_embed_timeout_s=_float(env, "DOCSTREAM_QUERY_EMBED_TIMEOUT_S", 5.0),
                query_store_timeout_s=_float(env, "DOCSTREAM_QUERY_STORE_TIMEOUT_S", 2.0),
                max_k=_int(env, "DOCSTREAM_MAX_K", 100),
                sse_heartbeat_s=_float(env, "DOCSTREAM_SSE_HEARTBEAT_S", 15.0),
                sse_retry_ms=_int(env, "DOCSTREAM_SSE_RETRY_MS", 3000),
                follow_max=_int(env, "DOCSTREAM_FOLLOW_MAX", 1000),
                follow_resume_s=_float(env, "DOCSTREAM_FOLLOW_RESUME_S", 60.0),
                follow_replay_events=_int(env, "DOCSTREAM_FOLLOW_REPLAY_EVENTS", 500),
                follow_queue_events=_int(env, "DOCSTREAM_FOLLOW_QUEUE_EVENTS", 1000),
            ),
            stack_dir=stack_dir,
            log_level=env.get("DOCSTREAM_LOG_LEVEL", "INFO").upper(),
            schema_registry_url=env.get("SCHEMA_REGISTRY_URL", ""),
            worker_stages=worker_stages(
                env.get("DOCSTREAM_WORKER_STAGES", ",".join(WORKER_STAGES))
            ),
        )


def kafka_security(env: Mapping[str, str]) -> KafkaSecurity:
    return KafkaSecurity(
        protocol=env.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").strip().upper() or "PLAINTEXT",
        sasl_mechanism=env.get("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512").strip().upper(),
        username=env.get("KAFKA_SASL_USERNAME", ""),
        password=_secret(env, "KAFKA_SASL_PASSWORD"),
        ca_file=_path(env, "KAFKA_SSL_CA_FILE"),
        cert_file=_path(env, "KAFKA_SSL_CERT_FILE"),
        key_file=_path(env, "KAFKA_SSL_KEY_FILE"),
        key_password=_secret(env, "KAFKA_SSL_KEY_PASSWORD"),
    )
