"""`GET /documents/{doc_id}`: where a document stands, from the state the
pipeline keeps (the chunker's document-state table) and the two stores
themselves (how many chunks of the indexed version each one holds)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.problems import problem
from core.types import GraphStore, VectorStore

Counts = tuple[int, int]  # (all chunks of the document, chunks of its indexed version)


def overall(state: Mapping[str, Any], qdrant: Counts, neo4j: Counts, current: bool = True) -> str:
    """indexed | indexing | deleted | deleting | dead_lettered.

    `current`: the state's chunk count is of the chunker in use. After a replay
    re-cut a document with another one, the stores hold the replay's count:
    then both must agree, with no orphans."""
    if state["status"] == "dead_lettered":
        return "dead_lettered"
    if state["status"] == "deleted":
        return "deleted" if qdrant[0] == 0 and neo4j[0] == 0 else "deleting"
    # Indexed: each store holds exactly the indexed version's chunks, no orphans.
    if current:
        want = (state["chunk_count"], state["chunk_count"])
        return "indexed" if qdrant == want and neo4j == want else "indexing"
    agree = qdrant == neo4j and qdrant[0] == qdrant[1] > 0
    return "indexed" if agree else "indexing"


class DocumentStatus:
    def __init__(
        self,
        states: Mapping[str, Any] | None,
        vectors: VectorStore,
        graph: GraphStore,
        timeout_s: float = 2.0,
        current: Callable[[str], bool] = lambda profile: True,
    ) -> None:
        self.states = states
        self.vectors = vectors
        self.graph = graph
        self.timeout_s = timeout_s
        self.current = current  # a state's profile digest → cut by the chunker in use?

    async def get(self, request: Request) -> Response:
        doc_id = request.path_params["doc_id"]
        if self.states is None:
            return problem(
                503,
                "Status unavailable",
                "document state lives in the worker; ask the API the worker serves",
            )
        state = self.states.get(doc_id)
        if not state:
            return problem(
                404,
                "Unknown document",
                f"the pipeline has not seen {doc_id!r} (yet: a document just accepted "
                "is on its way)",
            )
        indexed = state.get("indexed_version", -1)
        current = self.current(state.get("profile", ""))
        qdrant, neo4j = await asyncio.gather(
            self._counts(self.vectors, doc_id, indexed), self._counts(self.graph, doc_id, indexed)
        )
        body = {
            "doc_id": doc_id,
            "status": overall(state, qdrant, neo4j, current) if qdrant and neo4j else "unknown",
            "version": state["version"],
            "indexed_version": indexed,
            "chunk_count": state["chunk_count"],
            # False: a replay re-cut it since, and the stores hold the replay's chunks.
            "cut_by_current_profile": current,
            "correlation_id": state.get("correlation_id", ""),
            "qdrant": _describe(qdrant, "points"),
            "neo4j": _describe(neo4j, "chunks"),
        }
        if state["status"] == "dead_lettered":
            body["dead_letter"] = {"reason": state.get("reason", "")}
        return JSONResponse(body)

    async def _counts(
        self, store: VectorStore | GraphStore, doc_id: str, version: int
    ) -> Counts | None:
        """None when the store does not answer in time: the other one still reports."""
        try:
            total, current = await asyncio.wait_for(
                asyncio.gather(store.count(doc_id), store.count(doc_id, version)), self.timeout_s
            )
        except Exception:
            return None
        return total, current


def _describe(counts: Counts | None, unit: str) -> dict[str, Any]:
    if counts is None:
        return {"error": "unavailable"}
    return {unit: counts[0], "of_indexed_version": counts[1]}
