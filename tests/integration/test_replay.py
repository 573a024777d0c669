"""Replay and repair on the real stack.

- A repair (`rebuild --from-time`) re-applies the events since a time to the
  active generation: chunks a store lost come back, with no new generation.
- A replay re-chunks and re-embeds the raw documents with a new chunk size into
  a new generation of both stores while queries run, switches, and from then
  on the worker chunks new documents with that size too.

The module has topics and a graph of its own: a replay reads every document
of its topic, and switches the whole graph.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from neo4j import Driver

from core.settings import ChunkerSettings
from streams.chunker import SentenceChunker
from streams.embedding.model import resolve_model
from tests.integration.conftest import Pipeline
from tests.integration.helpers import eventually, stored_index
from tests.integration.test_rebuild import AUTH, TOPICS, QueryLoop, chunks_by_gen, indexed, publish

pytestmark = pytest.mark.integration
OWN_TOPICS = "replay"  # topics and a graph of its own (tests/integration/conftest.py)
ENGINES = ("edge", "server")
LIVE_TOKENS, REPLAY_TOKENS = 48, 12


def text(i: int, topic: str) -> str:
    sentences = [
        f"Field notes on {topic}, entry {i}.",
        f"The {topic} were surveyed at dawn and again at dusk by the second crew.",
        "Readings drifted a little with the temperature, as the logbook says.",
        f"Nobody expected the {topic} to behave the same way twice in one week.",
        "The crew filed the notes and went home before the rain.",
    ]
    return " ".join(sentences)


def chunk_count(doc_text: str, max_tokens: int, model: str) -> int:
    chunker = SentenceChunker.for_model(ChunkerSettings(max_tokens, overlap_tokens=0), model)
    return len(chunker.chunk("x", doc_text))


@pytest.fixture(scope="module")
def corpus(pipeline: Pipeline, neo4j_driver: Driver) -> Iterator[dict[str, str]]:
    own = pipeline.name
    docs = {f"{own}-{i}": text(i, topic) for i, topic in enumerate(TOPICS)}
    publish(pipeline, [{"doc_id": d, "text": t, "links": []} for d, t in docs.items()])
    for doc_id in docs:
        eventually(lambda d=doc_id: indexed(pipeline, d), f"{doc_id} indexed")
    yield docs
    neo4j_driver.execute_query(
        "MATCH (n) WHERE n.doc_id STARTS WITH $own OR n.gen STARTS WITH $own + ':' "
        "OR n.name = $own DETACH DELETE n",
        own=own,
    )


def chunks_per_doc(driver: Driver, own: str) -> dict[str, int]:
    records = driver.execute_query(
        "MATCH (c:Chunk) WHERE c.doc_id STARTS WITH $own RETURN c.doc_id AS d, count(c) AS n",
        own=own,
    ).records
    return {r["d"]: r["n"] for r in records}


def finished(pipeline: Pipeline, path: str) -> dict[str, object] | None:
    report = httpx.get(f"{pipeline.base_url}{path}", headers=AUTH, timeout=30).json()
    return None if report["running"] else report


def test_a_repair_from_a_time_brings_back_what_a_store_lost(
    pipeline: Pipeline, corpus: dict[str, str], neo4j_driver: Driver
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    lost = f"{pipeline.name}-lost"
    publish(pipeline, [{"doc_id": lost, "text": text(9, "repair work")}])
    eventually(lambda: indexed(pipeline, lost), f"{lost} indexed")
    before = chunks_by_gen(neo4j_driver, pipeline.name)
    [gen] = before
    assert chunks_per_doc(neo4j_driver, pipeline.name)[lost] > 0
    # The store "loses" the document: restored from a backup taken before it.
    neo4j_driver.execute_query("MATCH (c:Chunk {doc_id: $d}) DETACH DELETE c", d=lost)
    assert not indexed(pipeline, lost)

    started = httpx.post(
        f"{pipeline.base_url}/admin/rebuild",
        json={"target": "neo4j", "from_time": since.isoformat()},
        headers=AUTH,
    )
    assert started.status_code == 202, started.text
    report = eventually(lambda: finished(pipeline, "/admin/rebuild"), "the repair finished")
    [target] = report["targets"]  # type: ignore[index]
    assert target["phase"] == "done" and target["generation"] == gen, report
    assert 0 < target["written"] < 50, "it read from the time on, not the whole topic"
    assert chunks_by_gen(neo4j_driver, pipeline.name) == before, "the same generation, whole again"
    assert indexed(pipeline, lost)

    # The same command later repairs again (a finished repair leaves no offsets behind).
    neo4j_driver.execute_query("MATCH (c:Chunk {doc_id: $d}) DETACH DELETE c", d=lost)
    again = httpx.post(
        f"{pipeline.base_url}/admin/rebuild",
        json={"target": "neo4j", "from_time": since.isoformat()},
        headers=AUTH,
    )
    assert again.status_code == 202, again.text
    eventually(lambda: finished(pipeline, "/admin/rebuild"), "the second repair finished")
    assert chunks_by_gen(neo4j_driver, pipeline.name) == before


def test_a_replay_with_a_new_chunk_size_switches_both_stores_under_queries(
    pipeline: Pipeline, corpus: dict[str, str], neo4j_driver: Driver
) -> None:
    model = pipeline.settings.embedder.model
    assert any(
        chunk_count(t, LIVE_TOKENS, model) != chunk_count(t, REPLAY_TOKENS, model)
        for t in corpus.values()
    ), "the new chunk size must change the chunks, or the test shows nothing"
    [old_gen] = chunks_by_gen(neo4j_driver, pipeline.name)
    loop = QueryLoop(pipeline)
    loop.start()
    try:
        started = httpx.post(
            f"{pipeline.base_url}/admin/replay",
            json={"topic": "documents", "max_tokens": REPLAY_TOKENS, "overlap_tokens": 0},
            headers=AUTH,
            timeout=60,
        )
        assert started.status_code == 202, started.text
        late = f"{pipeline.name}-late"
        publish(pipeline, [{"doc_id": late, "text": text(7, "harbour cranes")}])
        report = eventually(
            lambda: finished(pipeline, "/admin/replay"), "the replay finished", timeout_s=300
        )
        time.sleep(1)  # a few queries after the switch as well
    finally:
        loop.stop.set()
        loop.join(timeout=60)
    [target] = report["targets"]  # type: ignore[index]
    assert target["phase"] == "done", report
    assert report["configure"]["DOCSTREAM_CHUNK_MAX_TOKENS"] == str(REPLAY_TOKENS)  # type: ignore[index]
    assert loop.answered > 0 and loop.bad == [], loop.bad[:5]

    # Every document, the late one included, is cut at the new size, in a new
    # generation only; the old one is gone.
    eventually(lambda: indexed(pipeline, late), f"{late} indexed after the switch")
    [new_gen] = chunks_by_gen(neo4j_driver, pipeline.name)
    assert new_gen != old_gen
    expected = {**corpus, late: text(7, "harbour cranes")}
    counted = chunks_per_doc(neo4j_driver, pipeline.name)
    for doc_id, doc_text in expected.items():
        assert counted[doc_id] == chunk_count(doc_text, REPLAY_TOKENS, model), doc_id

    # The worker adopted the profile: a document published now is cut the new way.
    fresh = f"{pipeline.name}-fresh"
    publish(pipeline, [{"doc_id": fresh, "text": text(8, "orchard bees")}])
    eventually(lambda: indexed(pipeline, fresh), f"{fresh} indexed")
    fresh_chunks = chunks_per_doc(neo4j_driver, pipeline.name)[fresh]
    assert fresh_chunks == chunk_count(text(8, "orchard bees"), REPLAY_TOKENS, model)

    pipeline.stop()
    stored = stored_index(pipeline.settings.qdrant)
    assert stored.graph_built is not False, "a server generation switched to without its graph"
    assert stored.generations == [stored.active], "the old Qdrant generation is gone"
    points = {
        p for p, payload in stored.points.items() if payload["doc_id"].startswith(pipeline.name)
    }
    graph = {c for cs in chunks_by_gen(neo4j_driver, pipeline.name).values() for c in cs}
    assert points == graph, "Qdrant's new generation holds the same chunks as Neo4j's"


def test_a_restarted_worker_keeps_the_profile_its_index_was_made_with(
    pipeline: Pipeline, neo4j_driver: Driver
) -> None:
    """After the replay above (the worker stopped at its end): the configuration
    still names the old chunk size, but the active generations recorded the
    replay's profile, and the restarted worker reads it back from them."""
    records = neo4j_driver.execute_query(
        "MATCH (g:DocstreamGraph {name: $graph}) "
        "MATCH (p:DocstreamProfile {graph: $graph, gen: g.active}) RETURN p.max_tokens AS n",
        graph=pipeline.settings.neo4j.graph,
    ).records
    assert [r["n"] for r in records] == [REPLAY_TOKENS]
    pipeline.start()
    model = pipeline.settings.embedder.model
    after = f"{pipeline.name}-after-restart"
    publish(pipeline, [{"doc_id": after, "text": text(9, "kiln firing")}])
    eventually(lambda: indexed(pipeline, after), f"{after} indexed")
    assert chunks_per_doc(neo4j_driver, pipeline.name)[after] == chunk_count(
        text(9, "kiln firing"), REPLAY_TOKENS, model
    )
    assert chunk_count(text(9, "kiln firing"), LIVE_TOKENS, model) != chunk_count(
        text(9, "kiln firing"), REPLAY_TOKENS, model
    ), "the two sizes must cut this text differently, or the test shows nothing"


@pytest.fixture(scope="module")
def other_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same weights under another name: a model a replay can switch to
    without a network (its vectors equal the packaged model's, but the index
    and the topic cannot tell, which is all this test needs)."""
    target = tmp_path_factory.mktemp("models") / "minilm-renamed"
    shutil.copytree(resolve_model("all-MiniLM-L6-v2"), target)
    return target


def rebuild_all(pipeline: Pipeline) -> dict[str, object]:
    started = httpx.post(
        f"{pipeline.base_url}/admin/rebuild", json={"target": "all"}, headers=AUTH, timeout=60
    )
    assert started.status_code == 202, started.text
    report = eventually(lambda: finished(pipeline, "/admin/rebuild"), "the rebuild ended")
    assert report is not None
    return report


def assert_refused(report: dict[str, object], model: str) -> None:
    targets = report["targets"]
    assert isinstance(targets, list) and {t["target"] for t in targets} == {"qdrant", "neo4j"}
    for target in targets:
        assert target["phase"] == "refused", target
        assert f"another model than {model!r}" in target["error"], target
        assert "docstream replay --topic documents" in target["error"], target


def index_status(pipeline: Pipeline) -> dict[str, dict[str, object]]:
    report = httpx.get(f"{pipeline.base_url}/admin/status", headers=AUTH, timeout=30).json()
    return {name: report[name] for name in ("qdrant", "neo4j")}


def test_a_rebuild_after_a_replay_that_changed_the_model_is_refused(
    pipeline: Pipeline, corpus: dict[str, str], neo4j_driver: Driver, other_model: Path
) -> None:
    """After a replay to another model, `chunks.embedded` still holds the old
    model's vectors (a replay writes the stores, not the topic): a rebuild from
    it would bring them back beside the new ones. It is refused, says why and
    what to do, and leaves nothing behind; a restarted worker, configured with
    the old model still, reads the new one back from its index and refuses too."""
    started = httpx.post(
        f"{pipeline.base_url}/admin/replay",
        json={"topic": "documents", "model": str(other_model)},
        headers=AUTH,
        timeout=120,
    )
    assert started.status_code == 202, started.text
    report = eventually(
        lambda: finished(pipeline, "/admin/replay"), "the replay finished", timeout_s=300
    )
    [target] = report["targets"]  # type: ignore[index]
    assert target["phase"] == "done", report
    assert report["configure"]["DOCSTREAM_EMBED_MODEL"] == str(other_model)  # type: ignore[index]
    [gen] = chunks_by_gen(neo4j_driver, pipeline.name)

    assert_refused(rebuild_all(pipeline), other_model.name)
    indexes = index_status(pipeline)
    for name, index in indexes.items():
        assert index["building"] is None, (name, index)  # the refused generation is gone
        assert index["profile"]["model"] == str(other_model), (name, index)  # type: ignore[index]
    assert list(chunks_by_gen(neo4j_driver, pipeline.name)) == [gen], "no switch, no new generation"

    pipeline.stop()
    pipeline.start()
    assert pipeline.settings.embedder.model != str(other_model)  # configured: the old one
    assert_refused(rebuild_all(pipeline), other_model.name)
    assert list(chunks_by_gen(neo4j_driver, pipeline.name)) == [gen]
