"""The Starlette edge: hybrid query over SSE, health and metrics."""
