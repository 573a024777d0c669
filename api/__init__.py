"""The Starlette edge: hybrid query over SSE (`queries.py` → `search.py` →
`fusion.py` → `sse.py`), HTTP intake and document status, admin routes,
health and metrics, and warming the query path before ready (`warmup.py`).
It may import core and schemas, and reaches the stores
and the embedder only through the Protocols of `core/types.py`, which the
composition root hands it; it never imports streams or sinks, and nothing but
`ops/composition.py` imports it."""
