"""The vector store's filters (`sinks/qdrant/server.py` builds them in
qdrant-client's types) in Qdrant Edge's types, for `sinks/qdrant/edge.py`."""

from __future__ import annotations

from typing import Any

import qdrant_edge as edge
from qdrant_client import models

from sinks.qdrant.server import _of_doc


def edge_filter(where: models.Filter) -> edge.Filter:
    """The server store's filter (`sinks/qdrant/server.py`), in Qdrant Edge's types."""
    must = where.must if isinstance(where.must, list) else [where.must]
    return edge.Filter(must=[_edge_condition(c) for c in must if c is not None])


def _edge_condition(condition: Any) -> edge.FieldCondition:
    match, bounds = condition.match, condition.range
    if isinstance(match, models.MatchValue):
        return edge.FieldCondition(key=condition.key, match=edge.MatchValue(match.value))
    if isinstance(match, models.MatchAny):
        return edge.FieldCondition(key=condition.key, match=edge.MatchAny(match.any))
    if isinstance(bounds, models.Range):
        span = edge.RangeFloat(gte=bounds.gte, gt=bounds.gt, lte=bounds.lte, lt=bounds.lt)
        return edge.FieldCondition(key=condition.key, range=span)
    raise TypeError(f"no Qdrant Edge form for the condition {condition!r}")


def doc_filter(doc_id: str, **where: Any) -> edge.Filter:
    """Points of one document, narrowed by `chunk_index` range or `version`."""
    more = [
        models.FieldCondition(key=key, range=value)
        if isinstance(value, models.Range)
        else models.FieldCondition(key=key, match=models.MatchValue(value=value))
        for key, value in where.items()
    ]
    return edge_filter(_of_doc(doc_id, *more))
