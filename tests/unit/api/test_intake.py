from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from starlette.testclient import TestClient

from api.app import create_api
from api.health import Health
from api.intake import Intake
from api.search import QueryLimits, SearchService
from core.kafka.producer import Headers, KafkaUnavailable
from core.settings import ApiSettings
from schemas.codec import codec_for
from tests.fakes import FakeStore
from tests.profiles import FixedProfile

KEY = "s3cret-key"


@dataclass
class FakeSender:
    up: bool = True
    sent: list[tuple[str, bytes, bytes, Headers]] = field(default_factory=list)

    async def send_all(self, topic: str, messages: Sequence[tuple[bytes, bytes, Headers]]) -> None:
        if not self.up:
            raise KafkaUnavailable("broker down")
        self.sent += [(topic, k, v, h) for k, v, h in messages]


def client(
    sender: FakeSender, keys: frozenset[str] = frozenset({KEY}), max_body: int = 10_000
) -> TestClient:
    settings = ApiSettings(api_keys=keys, max_body_bytes=max_body)
    search = SearchService(FixedProfile(), FakeStore(), FakeStore(), QueryLimits())  # type: ignore[arg-type]
    intake = Intake(sender, codec_for("DocumentEvent"), "documents", settings)
    return TestClient(create_api(search, Health({}), settings=settings, intake=intake))


DOC = {"doc_id": "d1", "text": "Hello there."}


def test_without_a_key_nothing_is_sent() -> None:
    sender = FakeSender()
    response = client(sender).post("/documents", json=DOC)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert sender.sent == []


def test_a_wrong_key_and_no_configured_keys_are_refused() -> None:
    sender = FakeSender()
    assert (
        client(sender).post("/documents", json=DOC, headers={"X-API-Key": "nope"}).status_code
        == 401
    )
    response = client(sender, keys=frozenset()).post(
        "/documents", json=DOC, headers={"X-API-Key": KEY}
    )
    assert response.status_code == 401 and "no API keys" in response.json()["detail"]
    assert sender.sent == []


def test_with_a_key_one_event_is_sent_with_the_echoed_correlation_id() -> None:
    sender = FakeSender()
    response = client(sender).post(
        "/documents",
        json=DOC,
        headers={"Authorization": f"Bearer {KEY}", "X-Correlation-ID": "c-77"},
    )
    assert response.status_code == 202
    assert response.json()["correlation_id"] == "c-77" == response.headers["x-correlation-id"]
    [(topic, key, value, headers)] = sender.sent
    assert (topic, key) == ("documents", b"d1")
    assert codec_for("DocumentEvent").decode(value)["text"] == "Hello there."
    assert ("correlation_id", b"c-77") in headers


def test_oversized_bodies_are_413_and_bad_json_is_422() -> None:
    sender = FakeSender()
    api = client(sender, max_body=100)
    big = {"doc_id": "d", "text": "x" * 500}
    assert api.post("/documents", json=big, headers={"X-API-Key": KEY}).status_code == 413
    for bad in (b"{oops", b"\xff\xfe not utf-8"):
        response = api.post("/documents", content=bad, headers={"X-API-Key": KEY})
        assert response.status_code == 422 and response.json()["field"] == "body"
    response = api.post("/documents", json={"text": "x"}, headers={"X-API-Key": KEY})
    assert response.status_code == 422 and response.json()["field"] == "doc_id"
    assert sender.sent == []


def test_a_text_over_the_limit_is_413_naming_it() -> None:
    sender = FakeSender()
    settings = ApiSettings(api_keys=frozenset({KEY}))
    search = SearchService(FixedProfile(), FakeStore(), FakeStore(), QueryLimits())  # type: ignore[arg-type]
    intake = Intake(sender, codec_for("DocumentEvent"), "documents", settings, max_text_bytes=50)
    api = TestClient(create_api(search, Health({}), settings=settings, intake=intake))
    batch = [DOC, {"doc_id": "d2", "text": "é" * 30}]  # 60 bytes in UTF-8
    response = api.post("/documents", json=batch, headers={"X-API-Key": KEY})
    assert response.status_code == 413
    assert response.json()["field"] == "[1].text" and "60 bytes" in response.json()["detail"]
    assert sender.sent == [], "nothing of a refused batch is sent"


def test_kafka_down_is_503_with_retry_after() -> None:
    response = client(FakeSender(up=False)).post("/documents", json=DOC, headers={"X-API-Key": KEY})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


def test_delete_sends_a_delete_event() -> None:
    sender = FakeSender()
    response = client(sender).delete("/documents/a/b.md", headers={"X-API-Key": KEY})
    assert response.status_code == 202 and response.json()["doc_id"] == "a/b.md"
    assert codec_for("DocumentEvent").decode(sender.sent[0][2])["op"] == "DELETE"


@pytest.mark.parametrize("doc_id", ["%C2%A0", "%20%09", "x" * 513])
def test_delete_of_an_id_no_document_can_have_is_422_and_sends_nothing(doc_id: str) -> None:
    sender = FakeSender()
    response = client(sender).delete(f"/documents/{doc_id}", headers={"X-API-Key": KEY})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "doc_id"
    assert sender.sent == []


def test_reads_can_be_made_to_need_a_key() -> None:
    search = SearchService(FixedProfile(), FakeStore(), FakeStore(), QueryLimits())  # type: ignore[arg-type]
    guarded = ApiSettings(api_keys=frozenset({KEY}), reads_need_key=True)
    api = TestClient(create_api(search, Health({}), settings=guarded))
    assert api.get("/query", params={"q": "x"}).status_code == 401
    assert api.get("/query", params={"q": "x"}, headers={"X-API-Key": KEY}).status_code == 200
    assert api.get("/health/live").status_code == 200
    assert api.get("/metrics").status_code == 200
    assert (
        TestClient(create_api(search, Health({}))).get("/query", params={"q": "x"}).status_code
        == 200
    )
