"""The expected projection of a corpus and its comparison with both stores.

A fault scenario publishes a known corpus, so the chunks both stores must end
up with are known in advance: the chunker is deterministic and chunk ids derive
from (doc_id, index) (`core/ids.py`). The comparison is by chunk id, per store:

- lost: an expected chunk the store does not hold;
- duplicated: a chunk the store holds more than once (Neo4j: several nodes
  with its id in the active generation; Qdrant: several points for one
  (doc_id, chunk_index));
- extra: a chunk of the corpus's doc ids that is not expected (an orphan or a
  point whose id is not the id its payload derives).

Usage (the poison-event scenario uses it the same way):

    docs = corpus(run_id, "psn", documents=40, sentences=6)  # prefix f"{run_id}-psn-"
    post_documents(pipeline, docs.docs)  # or publish with the producer
    expected = expected_projection(pipeline.settings, docs.texts, docs.prefix)
    waited_s = wait_until_complete(pipeline, neo4j_driver, expected, timeout_s=180)
    pipeline.stop()  # the embedded Qdrant admits one process: read it after
    result = compare_stores(pipeline.settings, neo4j_driver, expected)
    verdict.append(Verdict(..., lost=result.lost, duplicated=result.duplicated,
                           details=result.details()))
    assert_exact(result)

A document that must leave nothing in the stores (a poison event, dead-lettered)
stays out of the `docs` given to `expected_projection` but may share the
prefix: any chunk of it found in a store then counts as extra.

The stores are read back by doc-id prefix, so a scenario gives its corpus a
prefix no other corpus of the run shares (e.g. f"{run_id}-neo-"); the graph
is also scoped by the run's graph name (NEO4J_GRAPH)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import httpx
from neo4j import Driver

from core.ids import chunk_id
from core.settings import ChunkerSettings, Settings
from streams.chunker import SentenceChunker
from tests.integration.conftest import Pipeline
from tests.integration.helpers import stored_index
from tests.integration.test_resilience import document, post_batch


@dataclass(frozen=True)
class Expected:
    """The chunks a corpus must produce: chunk id → (doc_id, index)."""

    prefix: str  # every doc id of the corpus starts with it
    chunks: dict[str, tuple[str, int]]
    per_doc: dict[str, int]  # doc_id → chunk count

    @property
    def doc_ids(self) -> list[str]:
        return sorted(self.per_doc)


@cache
def _chunker(settings: ChunkerSettings, model: str) -> SentenceChunker:
    """Loading the tokenizer takes tens of seconds on a busy machine: once."""
    return SentenceChunker.for_model(settings, model)


def expected_projection(settings: Settings, docs: Mapping[str, str], prefix: str) -> Expected:
    """Chunk `docs` (doc_id → text) as the worker does: the same chunker, built
    from the worker's settings (`pipeline.settings`: its max_tokens), so the ids
    are those the pipeline derives. Every doc id must start with `prefix`, the
    corpus's own: the stores are read back by it."""
    outside = [d for d in docs if not d.startswith(prefix)]
    if not prefix or outside:
        raise ValueError(f"doc ids not under the prefix {prefix!r}: {outside[:3]}")
    chunker = _chunker(settings.chunker, settings.embedder.model)
    chunks: dict[str, tuple[str, int]] = {}
    per_doc: dict[str, int] = {}
    for doc_id, text in docs.items():
        cut = chunker.chunk(doc_id, text)
        per_doc[doc_id] = len(cut)
        chunks.update({c.chunk_id: (doc_id, c.index) for c in cut})
    return Expected(prefix, chunks, per_doc)


@dataclass(frozen=True)
class StoreComparison:
    """One store against the expected projection."""

    store: str
    expected: int
    found: int  # stored chunks of the corpus's doc ids, duplicates included
    lost: frozenset[str]  # chunk ids expected but absent
    duplicated: frozenset[str]  # chunk ids present more than once
    extra: frozenset[str]  # chunk ids present but not expected

    @property
    def exact(self) -> bool:
        return not (self.lost or self.duplicated or self.extra)


@dataclass(frozen=True)
class Comparison:
    """Both stores; `lost` and `duplicated` count distinct chunk ids that are
    lost (or duplicated) in at least one store: what a Verdict reports."""

    stores: list[StoreComparison] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return len(frozenset().union(*(s.lost for s in self.stores)))

    @property
    def duplicated(self) -> int:
        return len(frozenset().union(*(s.duplicated for s in self.stores)))

    @property
    def extra(self) -> int:
        return len(frozenset().union(*(s.extra for s in self.stores)))

    @property
    def exact(self) -> bool:
        return all(s.exact for s in self.stores)

    def details(self) -> dict[str, Any]:
        """Per-store figures for a Verdict's details (short keys: one line)."""
        out: dict[str, Any] = {"chunks": self.stores[0].expected if self.stores else 0}
        for s in self.stores:
            out[s.store] = f"{s.found}/{s.expected}"
            if s.lost or s.duplicated or s.extra:
                out[f"{s.store}_lost"] = len(s.lost)
                out[f"{s.store}_dup"] = len(s.duplicated)
                out[f"{s.store}_extra"] = len(s.extra)
        return out

    def summary(self) -> str:
        lines = []
        for s in self.stores:
            lines.append(
                f"{s.store}: {s.found} stored of {s.expected} expected; lost {len(s.lost)} "
                f"{sorted(s.lost)[:5]}, duplicated {len(s.duplicated)} "
                f"{sorted(s.duplicated)[:5]}, extra {len(s.extra)} {sorted(s.extra)[:5]}"
            )
        return "\n".join(lines)


def compare(
    store: str, expected: Expected, found: Counter[str], foreign: int = 0
) -> StoreComparison:
    """`found`: chunk id → how many times the store holds it; `foreign`: stored
    chunks whose id does not match what their doc id and index derive."""
    want = set(expected.chunks)
    extra = {c for c in found if c not in want}
    extra |= {f"foreign#{i}" for i in range(foreign)}
    return StoreComparison(
        store=store,
        expected=len(want),
        found=sum(found.values()) + foreign,
        lost=frozenset(want - set(found)),
        duplicated=frozenset(c for c, n in found.items() if n > 1),
        extra=frozenset(extra),
    )


NEO4J_CHUNKS = """
OPTIONAL MATCH (g:DocstreamGraph {name: $graph})
WITH coalesce(g.active, $graph + ':0') AS gen
MATCH (c:Chunk {gen: gen}) WHERE c.doc_id STARTS WITH $prefix
RETURN c.chunk_id AS id, count(*) AS n
"""


def neo4j_chunks(driver: Driver, settings: Settings, prefix: str) -> Counter[str]:
    """Chunk nodes of the run's active graph generation whose doc id starts with
    `prefix`: chunk id → node count (more than 1 is a duplicate). The graph is
    shared, so the query is scoped by both the graph name (NEO4J_GRAPH, the
    run id) and the prefix."""
    records, _, _ = driver.execute_query(NEO4J_CHUNKS, graph=settings.neo4j.graph, prefix=prefix)
    return Counter({str(r["id"]): int(r["n"]) for r in records})


def qdrant_chunks(settings: Settings, prefix: str) -> tuple[Counter[str], int]:
    """Points of the active Qdrant generation whose doc id starts with `prefix`,
    read from disk: only once the worker has stopped (an embedded store admits
    one process). Returns (chunk id derived from each payload's doc_id and
    chunk_index → point count, number of points whose id is not that one)."""
    index = stored_index(settings.qdrant)
    found: Counter[str] = Counter()
    foreign = 0
    for point_id, payload in index.points.items():
        doc_id = str(payload.get("doc_id", ""))
        if not doc_id.startswith(prefix):
            continue
        derived = chunk_id(doc_id, int(payload.get("chunk_index", -1)))
        if derived == point_id:
            found[derived] += 1
        else:
            foreign += 1
    return found, foreign


def compare_stores(settings: Settings, driver: Driver, expected: Expected) -> Comparison:
    """Both stores against `expected`. The worker must be stopped (Qdrant)."""
    points, foreign = qdrant_chunks(settings, expected.prefix)
    return Comparison(
        [
            compare("qdrant", expected, points, foreign),
            compare("neo4j", expected, neo4j_chunks(driver, settings, expected.prefix)),
        ]
    )


def assert_exact(result: Comparison) -> None:
    """Fail, with the per-store summary, unless both stores hold exactly the
    expected chunks: none lost, none duplicated, none extra."""
    assert result.exact, f"the stores differ from the expected projection:\n{result.summary()}"


# While the worker runs, Qdrant is read through the worker's status API.


def _qdrant_points(client: httpx.Client, doc_id: str) -> int:
    try:
        response = client.get(f"/documents/{doc_id}", timeout=10)
    except httpx.HTTPError:
        return -1
    if response.status_code != 200:
        return -1
    return int(response.json().get("qdrant", {}).get("points", -1))


def live_complete(pipeline: Pipeline, driver: Driver, expected: Expected) -> bool:
    """Whether the running worker's stores look complete: Neo4j holds exactly
    the expected chunk ids, once each, and Qdrant (per the status API) holds
    each document's expected number of points. Neo4j first: one query."""
    try:
        graph = neo4j_chunks(driver, pipeline.settings, expected.prefix)
    except Exception:  # Neo4j down (a fault scenario): not complete
        return False
    if set(graph) != set(expected.chunks) or any(n != 1 for n in graph.values()):
        return False
    with httpx.Client(base_url=pipeline.base_url) as client:
        return all(_qdrant_points(client, d) == n for d, n in expected.per_doc.items())


def wait_until_complete(
    pipeline: Pipeline, driver: Driver, expected: Expected, timeout_s: float
) -> float | None:
    """Seconds until `live_complete` held, or None after `timeout_s` (the
    caller still compares: the verdict then says what is missing)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if live_complete(pipeline, driver, expected):
            return time.monotonic() - started
        time.sleep(2)
    return None


# The corpus: documents of a few sentences, each with words of its own.


@dataclass(frozen=True)
class Corpus:
    prefix: str
    docs: list[dict[str, Any]]  # the JSON bodies POST /documents takes

    @property
    def texts(self) -> dict[str, str]:
        return {d["doc_id"]: d["text"] for d in self.docs}

    @property
    def doc_ids(self) -> list[str]:
        return [d["doc_id"] for d in self.docs]


def corpus(run_id: str, tag: str, documents: int, sentences: int) -> Corpus:
    """`documents` docs of `sentences` sentences (test_resilience's `document`),
    under the doc-id prefix f"{run_id}-{tag}-": `tag` must be the scenario's own."""
    docs = [document(run_id, f"{tag}-{i:04d}", sentences) for i in range(documents)]
    return Corpus(f"{run_id}-{tag}-", docs)


def post_documents(pipeline: Pipeline, docs: list[dict[str, Any]], per_request: int = 25) -> None:
    """Publish through the worker's API, a batch per request (202 each)."""
    for start in range(0, len(docs), per_request):
        post_batch(pipeline, docs[start : start + per_request])


def ensure_running(pipeline: Pipeline) -> None:
    """The worker of the module, started again if a previous scenario stopped it
    (to read Qdrant) or a fault killed it."""
    if pipeline.process is None or pipeline.process.poll() is not None:
        pipeline.start()
