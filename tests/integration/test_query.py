"""Hybrid retrieval on the real stores: lexical (BM25 sparse vectors in
Qdrant), dense, fusion, and filters that hold in every mode."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from tests.integration.conftest import TEST_API_KEY, Pipeline
from tests.integration.helpers import eventually

pytestmark = pytest.mark.integration
ENGINES = ("edge", "server")  # once on Qdrant Edge, once on a server (conftest)
AUTH = {"X-API-Key": TEST_API_KEY}


def query(pipeline: Pipeline, **params: Any) -> list[tuple[str, dict[str, Any]]]:
    with (
        httpx.Client(base_url=pipeline.base_url, timeout=30) as client,
        connect_sse(client, "GET", "/query", params=params) as source,
    ):
        return [(event.event, json.loads(event.data)) for event in source.iter_sse()]


def hits(events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [data for kind, data in events if kind == "hit"]


@pytest.fixture(scope="module")
def corpus(pipeline: Pipeline, run_id: str) -> dict[str, str]:
    docs = {
        "team-a": ("Quarterly rollout of the Zephyrine pipeline for the harbour cranes.", "a"),
        "team-b": ("Quarterly rollout of the Zephyrine pipeline for the airport belts.", "b"),
        "rare": ("An obscure word, glimmerquartz, appears in this note only.", "a"),
    }
    body = [
        {"doc_id": f"{run_id}-{name}", "text": text, "metadata": {"team": team}}
        for name, (text, team) in docs.items()
    ]
    response = httpx.post(f"{pipeline.base_url}/documents", json=body, headers=AUTH, timeout=30)
    assert response.status_code == 202, response.text
    ids = {name: f"{run_id}-{name}" for name in docs}
    for doc_id in ids.values():
        eventually(
            lambda d=doc_id: (
                (httpx.get(f"{pipeline.base_url}/documents/{d}").json() or {}).get("status")
                == "indexed"
            ),
            f"{doc_id} indexed",
        )
    return ids


def test_a_fresh_document_is_found_by_a_word_only_it_contains(
    pipeline: Pipeline, corpus: dict[str, str]
) -> None:
    found = hits(query(pipeline, q="glimmerquartz", mode="lexical", k=3, expand=0))
    assert found and found[0]["doc_id"] == corpus["rare"]
    assert found[0]["retrievers"] == {"lexical": 1}
    assert all(h["doc_id"] == corpus["rare"] for h in found), "no other chunk has the word"


def test_hybrid_hits_say_which_retrievers_found_them(
    pipeline: Pipeline, corpus: dict[str, str]
) -> None:
    found = hits(query(pipeline, q="glimmerquartz obscure word", k=3, expand=0))
    top = found[0]
    assert top["doc_id"] == corpus["rare"]
    assert set(top["retrievers"]) == {"dense", "lexical"}


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_a_metadata_filter_holds_in_every_mode(
    pipeline: Pipeline, corpus: dict[str, str], mode: str
) -> None:
    params = {
        "q": "quarterly Zephyrine pipeline rollout",
        "mode": mode,
        "k": 10,
        "filter[team]": "b",
    }
    found = hits(query(pipeline, **params))
    assert [h["doc_id"] for h in found] == [corpus["team-b"]]
    unfiltered = {h["doc_id"] for h in hits(query(pipeline, q=params["q"], mode=mode, k=10))}
    assert {corpus["team-a"], corpus["team-b"]} <= unfiltered


def test_post_query_takes_the_same_fields_as_json(
    pipeline: Pipeline, corpus: dict[str, str]
) -> None:
    body = {"q": "Zephyrine rollout", "k": 5, "doc_id": [corpus["team-a"]], "expand": 0}
    response = httpx.post(f"{pipeline.base_url}/query", json=body, timeout=30)
    assert response.status_code == 200
    assert {h["doc_id"] for h in response.json()["hits"]} == {corpus["team-a"]}
    bad = httpx.post(f"{pipeline.base_url}/query", json={"q": "x", "mode": "fuzzy"})
    assert bad.status_code == 422 and bad.json()["field"] == "mode"


def test_graph_expansion_reaches_a_linked_document_the_dense_retriever_missed(
    pipeline: Pipeline, run_id: str
) -> None:
    citing, cited = f"{run_id}-citing", f"{run_id}-cited"
    body = [
        {"doc_id": cited, "text": "Tidal charts for the northern estuary, updated each winter."},
        {"doc_id": citing, "text": "Falconry gloves must be oiled monthly.", "links": [cited]},
    ]
    response = httpx.post(f"{pipeline.base_url}/documents", json=body, headers=AUTH, timeout=30)
    assert response.status_code == 202
    for doc_id in (cited, citing):
        eventually(
            lambda d=doc_id: (
                httpx.get(f"{pipeline.base_url}/documents/{d}").json().get("status") == "indexed"
            ),
            f"{doc_id} indexed",
        )
    events = query(pipeline, q="oiling falconry gloves", mode="dense", k=1, expand=1)
    dense = [h for h in hits(events) if h["retrievers"] != {"graph": 1}]
    graph = [h for h in hits(events) if h["retrievers"] == {"graph": 1}]
    assert [h["doc_id"] for h in dense] == [citing]
    linked = [h for h in graph if h["doc_id"] == cited]
    assert linked and linked[0]["edge"] == "links_to" and linked[0]["via"] == dense[0]["chunk_id"]
