from starlette.testclient import TestClient

from api.health import Health, ops_app


async def up() -> None:
    return None


async def down() -> None:
    raise ConnectionError("refused")


def test_a_worker_without_the_api_answers_probes_and_scrapes() -> None:
    ops = TestClient(ops_app(Health({"kafka": up, "neo4j": down})))
    assert ops.get("/health/live").status_code == 200
    ready = ops.get("/health/ready")
    assert ready.status_code == 503 and ready.json()["down"] == ["neo4j"]
    assert ops.get("/health").json()["status"] == "degraded"
    assert "docstream_http_requests_total" in ops.get("/metrics").text
    assert "x-correlation-id" in ops.get("/health/live").headers


def test_it_serves_nothing_else() -> None:
    ops = TestClient(ops_app(Health({"kafka": up})))
    assert ops.get("/query", params={"q": "x"}).status_code == 404
    assert ops.post("/documents", json={}).status_code in (404, 405)


def test_health_says_which_embedder_backend_runs() -> None:
    about = {"embedder": {"model": "all-MiniLM-L6-v2", "backend": "onnx-int8", "path": "direct"}}
    ops = TestClient(ops_app(Health({"kafka": up}, about=lambda: about)))
    body = ops.get("/health").json()
    assert body["embedder"]["backend"] == "onnx-int8"
    assert body["status"] == "ok"
