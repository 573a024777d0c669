import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from api.app import create_api
from api.health import Health
from api.middleware import CorrelationMiddleware, MetricsMiddleware
from api.rebuild import RebuildControl, rebuild_routes
from api.search import FAILED_MESSAGE, QueryLimits, SearchService
from core.logs import JsonFormatter
from core.settings import ApiSettings
from core.types import Hit, StoreUnavailable
from tests.fakes import FakeStore, MisreadStore, hit
from tests.profiles import FixedProfile


async def up() -> None:
    return None


async def down() -> None:
    raise ConnectionError("refused")


def client(checks: dict[str, Callable[[], Awaitable[None]]] | None = None) -> TestClient:
    vectors, graph = FakeStore(hits=[hit("a"), hit("b")]), FakeStore()
    search = SearchService(FixedProfile(), vectors, graph, QueryLimits())  # type: ignore[arg-type]
    return TestClient(create_api(search, Health(checks or {"kafka": up})))


def test_query_as_json() -> None:
    response = client().get("/query", params={"q": "kafka", "k": 2})
    assert response.status_code == 200
    body = response.json()
    assert [h["chunk_id"] for h in body["hits"]] == ["a", "b"]
    assert body["correlation_id"] == response.headers["x-correlation-id"]
    assert "total_ms" in body["timings"]


def test_query_as_server_sent_events() -> None:
    with client().stream(
        "GET", "/query", params={"q": "kafka"}, headers={"Accept": "text/event-stream"}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join(response.iter_text())
    events = [line.split(": ", 1)[1] for line in body.splitlines() if line.startswith("event: ")]
    ids = [line.split(": ", 1)[1] for line in body.splitlines() if line.startswith("id: ")]
    assert events == ["meta", "hit", "hit", "done"]
    stream = ids[0].split(":")[0]
    assert stream.startswith("q")  # a one-shot answer: its reconnect gets 204
    assert ids == [f"{stream}:{n}" for n in range(4)]
    assert body.startswith("retry: ")


def test_a_given_correlation_id_is_kept_and_echoed() -> None:
    response = client().get("/query", params={"q": "x"}, headers={"X-Correlation-ID": "mine-1"})
    assert response.headers["x-correlation-id"] == "mine-1"
    assert response.json()["correlation_id"] == "mine-1"


def test_bad_parameters_are_422_problems_naming_the_field() -> None:
    for params, field in (({}, "q"), ({"q": "x", "k": "ten"}, "k"), ({"q": "x", "k": 0}, "k")):
        response = client().get("/query", params=params)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["field"] == field


def test_ready_is_503_naming_the_dependency_that_is_down() -> None:
    response = client({"kafka": up, "neo4j": down}).get("/health/ready")
    assert response.status_code == 503
    assert response.json()["down"] == ["neo4j"]
    assert client({"kafka": up}).get("/health/ready").status_code == 200
    assert client({"neo4j": down}).get("/health/live").status_code == 200


def test_metrics_are_exposed() -> None:
    api = client()
    api.get("/query", params={"q": "x"})
    text = api.get("/metrics").text
    assert 'docstream_http_requests_total{method="GET",route="/query",status="200"}' in text


def edge(settings: ApiSettings) -> TestClient:
    search = SearchService(FixedProfile(), FakeStore(hits=[hit("a")]), FakeStore(), QueryLimits())  # type: ignore[arg-type]
    return TestClient(create_api(search, Health({"kafka": up}), settings=settings))


def test_health_reports_version_uptime_and_dependencies() -> None:
    body = client().get("/health").json()
    assert body["status"] == "ok" and body["dependencies"] == {"kafka": "up"}
    assert body["version"] and body["uptime_s"] >= 0


def test_cors_allows_only_configured_origins() -> None:
    api = edge(ApiSettings(cors_origins=("https://app.example",)))
    allowed = api.get("/query", params={"q": "x"}, headers={"Origin": "https://app.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    other = api.get("/query", params={"q": "x"}, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    closed = edge(ApiSettings()).get(
        "/query", params={"q": "x"}, headers={"Origin": "https://app.example"}
    )
    assert "access-control-allow-origin" not in closed.headers, "no wildcard by default"


def test_a_client_over_its_rate_gets_429_with_retry_after() -> None:
    api = edge(ApiSettings(rate_limit_per_s=1.0, rate_limit_burst=2))
    codes = [api.get("/query", params={"q": "x"}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    limited = api.get("/query", params={"q": "x"})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert api.get("/health/live").status_code == 200, "probes are never limited"
    other_key = api.get("/query", params={"q": "x"}, headers={"X-API-Key": "someone-else"})
    assert other_key.status_code == 200, "each client has its own bucket"


def test_the_openapi_document_lists_every_route() -> None:
    api = client()
    document = api.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    routes = {route.path for route in api.app.routes}  # type: ignore[attr-defined]
    assert routes <= set(document["paths"])


def test_a_query_body_that_is_not_utf8_json_is_422() -> None:
    for bad in (b"\xff", b"{oops"):
        response = client().post("/query", content=bad)
        assert response.status_code == 422 and response.json()["field"] == "body"


def test_queries_in_flight_count_while_answered_and_return_to_zero() -> None:
    """The gauge the fault suite reads to prove no query task leaks: 1 inside a
    query (JSON or SSE), back to where it was once the answer is complete."""

    def in_flight() -> float:
        return REGISTRY.get_sample_value("docstream_queries_in_flight") or 0.0

    seen: list[float] = []

    class Watching(FakeStore):
        async def search(self, vector: Sequence[float], limit: int, where: Any = None) -> list[Hit]:
            seen.append(in_flight())
            return await super().search(vector, limit, where)

    search = SearchService(FixedProfile(), Watching(hits=[hit("a")]), FakeStore(), QueryLimits())
    api = TestClient(create_api(search, Health({"kafka": up})))
    before = in_flight()
    assert api.get("/query", params={"q": "kafka"}).status_code == 200
    sse = {"Accept": "text/event-stream"}
    with api.stream("GET", "/query", params={"q": "kafka"}, headers=sse) as response:
        assert "event: done" in "".join(response.iter_text())
    assert seen == [before + 1, before + 1]
    assert in_flight() == before


async def test_the_edge_middleware_passes_other_scopes_through_untouched() -> None:
    """Lifespan (and websocket) scopes reach the app as they came: no id, no metric."""
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)

    async def nothing() -> Any:
        return {}

    async def ignore(message: Any) -> None:
        return None

    for middleware in (CorrelationMiddleware, MetricsMiddleware):
        scope: dict[str, Any] = {"type": "lifespan"}
        await middleware(app)(scope, nothing, ignore)
        assert seen.pop() == {"type": "lifespan"}, middleware.__name__


def test_extra_routes_given_at_construction_are_mounted_after_the_edges_own() -> None:
    """The worker hands the admin rebuild and replay routes to create_api; nothing
    is appended to the app after it was built."""
    started: list[str] = []

    class Run:
        running = True

        def cancel(self) -> None: ...

        def report(self) -> dict[str, Any]:
            return {"running": True, "targets": started}

    def start(target: str, at: Any) -> Run:
        started.append(target)
        return Run()

    control = RebuildControl(start, frozenset({"k"}))
    search = SearchService(FixedProfile(), FakeStore(), FakeStore(), QueryLimits())  # type: ignore[arg-type]
    app = create_api(search, Health({"kafka": up}), extra_routes=rebuild_routes(control))
    paths = [getattr(route, "path", "") for route in app.routes]
    assert paths[0] == "/query" and paths[-len(rebuild_routes(control)) :] == [
        getattr(route, "path", "") for route in rebuild_routes(control)
    ]
    api = TestClient(app)
    response = api.post("/admin/rebuild", json={"target": "qdrant"}, headers={"X-API-Key": "k"})
    assert response.status_code == 202 and started == ["qdrant"]
    assert api.get("/admin/replay", headers={"X-API-Key": "k"}).json()["targets"] == ["qdrant"]


def test_without_extra_routes_the_admin_job_routes_are_absent() -> None:
    assert client().post("/admin/rebuild", json={}).status_code in (404, 405)


# A bug of ours is no store outage: an `error` event or a 500, logged and counted once.

SSE = {"Accept": "text/event-stream"}


def errors(stage: str) -> float:
    return REGISTRY.get_sample_value("docstream_query_errors_total", {"stage": stage}) or 0.0


def edge_over(vectors: FakeStore) -> TestClient:
    search = SearchService(FixedProfile(), vectors, FakeStore(), QueryLimits())  # type: ignore[arg-type]
    return TestClient(create_api(search, Health({"kafka": up})))


def sse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    kinds = [line[7:] for line in body.splitlines() if line.startswith("event: ")]
    data = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]
    return list(zip(kinds, data, strict=True))


def logged_failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info]


def test_a_bug_reading_a_stores_reply_ends_the_stream_with_an_error_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = errors("dense")
    headers = {**SSE, "X-Correlation-ID": "bug-1"}
    api = edge_over(MisreadStore(hits=[hit("a")]))
    with api.stream("GET", "/query", params={"q": "x", "mode": "dense"}, headers=headers) as got:
        assert got.status_code == 200
        body = "".join(got.iter_text())
    events = sse_events(body)
    assert [kind for kind, _ in events] == ["meta", "error"]
    assert events[-1][1] == {"message": FAILED_MESSAGE, "correlation_id": "bug-1"}
    assert "Traceback" not in body and "TypeError" not in body, "no internals to the client"
    assert errors("dense") == before + 1
    [record] = logged_failures(caplog)
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "error" and line["correlation_id"] == "bug-1"
    assert line["stage"] == "dense" and "TypeError" in line["exc"]


def test_a_bug_reading_a_stores_reply_is_a_500_problem_with_the_correlation_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = errors("lexical")
    api = edge_over(MisreadStore(lexical_hits=[hit("a", retriever="lexical")]))
    answer = api.get("/query", params={"q": "x", "mode": "lexical"})
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    correlation_id = answer.headers["x-correlation-id"]
    assert answer.json() == {
        "type": "about:blank",
        "title": "Query failed",
        "status": 500,
        "detail": FAILED_MESSAGE,
        "correlation_id": correlation_id,
    }
    assert errors("lexical") == before + 1
    [record] = logged_failures(caplog)
    assert record.correlation_id == correlation_id  # type: ignore[attr-defined]
    text = api.get("/metrics").text
    assert 'docstream_http_requests_total{method="GET",route="/query",status="500"}' in text


def test_a_bug_outside_any_store_call_is_counted_as_the_answers(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> Any:
        raise KeyError("a bug in fusion")

    monkeypatch.setattr("api.search.fuse", broken)
    before = errors("answer")
    api = edge_over(FakeStore(hits=[hit("a")]))
    assert api.get("/query", params={"q": "x"}).status_code == 500
    with api.stream("GET", "/query", params={"q": "x"}, headers=SSE) as got:
        events = sse_events("".join(got.iter_text()))
    assert [kind for kind, _ in events] == ["meta", "error"]
    assert errors("answer") == before + 2
    assert len(logged_failures(caplog)) == 2, "once per query"


def test_a_store_that_is_down_still_degrades_the_answer_as_before(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = errors("dense")
    api = edge_over(FakeStore(fail=StoreUnavailable("qdrant", "down")))
    answer = api.get("/query", params={"q": "x"})
    assert answer.status_code == 200
    assert answer.json()["degraded"] == [{"store": "qdrant", "reason": "unavailable"}]
    with api.stream("GET", "/query", params={"q": "x"}, headers=SSE) as got:
        events = sse_events("".join(got.iter_text()))
    assert [kind for kind, _ in events] == ["meta", "degraded", "done"]
    assert errors("dense") == before
    assert logged_failures(caplog) == []
