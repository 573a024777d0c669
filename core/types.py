"""The contracts between stages: data that crosses a seam, and the seams themselves.

Each Protocol is small on purpose, so a unit test can stand in a fake and an
operator can swap an implementation (another embedder, a Qdrant server instead
of the embedded one) without touching the stages that use it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# The error contract of the stores. Each adapter (sinks/qdrant, sinks/neo4j)
# maps its library's exceptions to these in one place, so the code that retries,
# pauses consumers and dead-letters decides on these types alone.


class StoreError(Exception):
    """A store failed an operation; the subclass says what the caller should do."""

    def __init__(self, store: str, message: str) -> None:
        super().__init__(f"{store}: {message}")
        self.store = store


class StoreUnavailable(StoreError):
    """The store is not there right now (down, restarting, timing out): wait it out."""


class StoreNeedsOperator(StoreError):
    """The store keeps failing for a reason no wait will fix (permissions, a full
    disk, a missing collection): pause, lose nothing, and tell the operator."""

    def __init__(self, store: str, message: str, reason: str) -> None:
        super().__init__(store, message)
        self.reason = reason  # a short label: "permission", "disk_full", …


class StoreRejected(StoreError):
    """The store refused these records for their content: retrying cannot help."""


@dataclass(frozen=True)
class Chunk:
    """A piece of a document, as the chunker cut it."""

    chunk_id: str
    doc_id: str
    index: int
    text: str
    start: int  # character offsets into the document text
    end: int


@dataclass(frozen=True)
class IndexedChunk:
    """A chunk with its vector and provenance: what both sinks write."""

    chunk_id: str
    doc_id: str
    version: int
    index: int
    chunk_count: int
    title: str
    text: str
    vector: Sequence[float]  # a list, or the decoder's array("f") in a bulk rebuild
    correlation_id: str
    source: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    links: list[str] = field(default_factory=list)

    def provenance(self) -> dict[str, Any]:
        """The properties both stores keep on a chunk under these names (each
        store adds its own): existing data and queries read them."""
        return {
            "doc_id": self.doc_id,
            "version": self.version,
            "chunk_count": self.chunk_count,
            "title": self.title,
            "text": self.text,
            "source": self.source,
            "correlation_id": self.correlation_id,
        }


@dataclass(frozen=True)
class DocumentDeletion:
    """A DELETE that reached the sinks: remove the document and all it produced."""

    doc_id: str
    version: int
    correlation_id: str


SinkEvent = IndexedChunk | DocumentDeletion


@dataclass
class WritePlan:
    """What one batch of sink events does to a store, in order: delete these
    documents, upsert these chunks, then drop each document's chunks at or past
    its new chunk count (the orphans of a shorter new version)."""

    deletions: list[DocumentDeletion] = field(default_factory=list)
    upserts: list[IndexedChunk] = field(default_factory=list)
    chunk_counts: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.deletions or self.upserts)


@dataclass(frozen=True)
class SearchFilter:
    """Restricts every retriever to matching chunks: all metadata pairs must
    match, and the source and doc_id must be among the given ones (if any)."""

    metadata: tuple[tuple[str, str], ...] = ()
    sources: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.metadata or self.sources or self.doc_ids)


@dataclass(frozen=True)
class Hit:
    """One search result from one retriever."""

    chunk_id: str
    doc_id: str
    index: int
    text: str
    score: float
    correlation_id: str
    retriever: str  # "dense" | "lexical" | "graph"
    title: str = ""


@dataclass(frozen=True)
class Neighbour:
    """A chunk the graph reached from a seed hit, and over which edge
    ("next", "links_to" or "mentions")."""

    hit: Hit
    seed: str
    edge: str


@dataclass(frozen=True)
class GenerationState:
    """Which generation of an index is live, and which one a rebuild is filling."""

    active: str
    building: str | None


class Generations(Protocol):
    """The generations of one store's index (see `ops/jobs/rebuild.py`)."""

    async def state(self) -> GenerationState: ...

    async def begin(self) -> str: ...

    async def activate(self, gen: str) -> str: ...

    async def abandon(self) -> None: ...

    async def drop(self, gen: str) -> None: ...

    async def size(self, gen: str) -> dict[str, int]: ...

    async def record_profile(self, gen: str, profile: dict[str, Any]) -> None:
        """Keep in the store which profile (model, dimension, chunking) made `gen`."""
        ...

    async def profile_of(self, gen: str) -> dict[str, Any] | None:
        """What `record_profile` kept for `gen`; None for a generation without one."""
        ...


class Producer(Protocol):
    """Sends to Kafka and returns once the broker has acknowledged."""

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None: ...

    async def send_many(
        self, topic: str, messages: Sequence[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]
    ) -> None: ...

    async def send_soon(
        self, topic: str, messages: Sequence[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]
    ) -> Awaitable[None]:
        """Queue the messages in order and return without waiting for the broker:
        the awaitable returned completes once every one is acknowledged (and
        raises if one is not). A stage that batches its acknowledgements awaits
        it before it moves its offsets."""
        ...


class Chunker(Protocol):
    def chunk(self, doc_id: str, text: str) -> list[Chunk]: ...


class Embedder(Protocol):
    model_name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class CurrentProfile(Protocol):
    """The processing profile in use (`streams/profile.py` holds it). A replay's
    switch replaces it at any moment, so readers ask it each time they need it
    and keep nothing it returns beyond one batch."""

    @property
    def chunker(self) -> Chunker: ...

    @property
    def embedder(self) -> Embedder: ...

    @property
    def digest(self) -> str:
        """Names the chunker settings and model: kept in each document's state."""
        ...

    def retired(self, model: str) -> bool:
        """Whether a replay replaced `model`: its vectors must not be written again."""
        ...


@dataclass(frozen=True)
class ReplayRequest:
    """A replay's profile, as an operator asked for it; None keeps the live setting."""

    topic: str = "documents"
    model: str | None = None
    max_tokens: int | None = None
    overlap_tokens: int | None = None


class VectorStore(Protocol):
    async def ensure_schema(self) -> None: ...

    async def write(self, plan: WritePlan) -> None: ...

    async def search(
        self, vector: Sequence[float], limit: int, where: SearchFilter | None = None
    ) -> list[Hit]: ...

    async def search_lexical(
        self, text: str, limit: int, where: SearchFilter | None = None
    ) -> list[Hit]: ...

    async def count(self, doc_id: str, version: int | None = None) -> int: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class GraphStore(Protocol):
    async def ensure_schema(self) -> None: ...

    async def write(self, plan: WritePlan) -> None: ...

    async def neighbours(
        self, chunk_ids: Sequence[str], per_edge: int, edges: Sequence[str] = ...
    ) -> list[Neighbour]: ...

    async def count(self, doc_id: str, version: int | None = None) -> int: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class BulkCreate(Protocol):
    """A store's bulk path into a generation a rebuild is filling
    (`sinks/qdrant/bulk.py`, `sinks/neo4j/bulk.py`): `create` writes chunks of
    documents the generation does not hold yet, with nothing to replace, in
    whatever way is cheapest for the store. Raises the contract's `StoreError`s."""

    async def create(self, chunks: list[IndexedChunk]) -> None: ...
