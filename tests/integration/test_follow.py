"""Follow mode on the real stack: the worker's sinks send their notices
through Kafka, the API process matches them against its followers.

A follower sees a document published while it follows, and a retract when it
is deleted; filters hold; a reconnect with Last-Event-ID resumes (or gets
`reset` when its stream is not kept); a reconnect after a one-shot answer gets
204; the follower cap answers 429."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from api.follow.consumer import NoticeConsumer
from api.follow.hub import SINKS
from api.follow.join import NoticeJoin, ReadyDoc
from core.notices import IndexedNotice
from tests.integration.conftest import TEST_API_KEY, Pipeline
from tests.integration.follow_client import Follow
from tests.integration.helpers import eventually, metric

pytestmark = pytest.mark.integration
ENGINES = ("edge", "server")  # once on Qdrant Edge, once on a server (conftest)
AUTH = {"X-API-Key": TEST_API_KEY}
FOLLOW_MAX = 6
PIPELINE_ENV = {
    "DOCSTREAM_SSE_HEARTBEAT_S": "1",
    "DOCSTREAM_FOLLOW_MAX": str(FOLLOW_MAX),
    "DOCSTREAM_FOLLOW_RESUME_S": "120",
}


def publish(pipeline: Pipeline, *docs: dict[str, Any]) -> None:
    answer = httpx.post(f"{pipeline.base_url}/documents", json=list(docs), headers=AUTH, timeout=30)
    assert answer.status_code == 202, answer.text


def delete(pipeline: Pipeline, doc_id: str) -> None:
    answer = httpx.delete(f"{pipeline.base_url}/documents/{doc_id}", headers=AUTH, timeout=30)
    assert answer.status_code == 202, answer.text


def indexed(pipeline: Pipeline, doc_id: str) -> None:
    eventually(
        lambda: (
            (httpx.get(f"{pipeline.base_url}/documents/{doc_id}").json() or {}).get("status")
            == "indexed"
        ),
        f"{doc_id} indexed",
    )


@pytest.fixture
def follows(pipeline: Pipeline) -> Iterator[list[Follow]]:
    opened: list[Follow] = []
    yield opened
    for follow in opened:
        follow.stop()


def follow(pipeline: Pipeline, opened: list[Follow], last: str = "", **params: Any) -> Follow:
    started = Follow(pipeline.base_url, params, last_event_id=last).start()
    opened.append(started)
    return started


def answered(follower: Follow) -> None:
    assert follower.status == 200
    follower.wait_for("done", lambda e: e.kind == "done", 60)


def test_a_follower_sees_a_new_document_then_its_retraction(
    pipeline: Pipeline, run_id: str, follows: list[Follow]
) -> None:
    follower = follow(pipeline, follows, q="quillwhistle", mode="lexical", k=3, expand=0)
    answered(follower)
    assert follower.kinds()[0] == "meta" and not follower.hits_of(f"{run_id}-quill")
    doc_id = f"{run_id}-quill"
    publish(pipeline, {"doc_id": doc_id, "text": "A note about the quillwhistle valve."})
    hit = follower.wait_for("the new hit", lambda e: e.kind == "hit" and e.data["doc_id"] == doc_id)
    assert hit.data["follow"] is True and "quillwhistle" in hit.data["text"]
    assert hit.id.startswith(follower.events[0].id.split(":")[0] + ":")
    delete(pipeline, doc_id)
    gone = follower.wait_for("the retract", lambda e: e.kind == "retract")
    assert (gone.data["chunk_id"], gone.data["reason"]) == (hit.data["chunk_id"], "deleted")
    assert metric(pipeline, "docstream_follow_notifications_total") >= 2
    assert metric(pipeline, "docstream_follow_delay_seconds_count") >= 2


def test_filters_hold_in_follow_mode(
    pipeline: Pipeline, run_id: str, follows: list[Follow]
) -> None:
    follower = follow(
        pipeline, follows, q="brindlecog", mode="lexical", expand=0, **{"filter[team]": "a"}
    )
    answered(follower)
    theirs, marker = f"{run_id}-cog-b", f"{run_id}-cog-marker"
    publish(
        pipeline, {"doc_id": theirs, "text": "The brindlecog of team b.", "metadata": {"team": "b"}}
    )
    indexed(pipeline, theirs)
    # Published after team b's document was indexed: once its hit is here,
    # the other's notice was handled too.
    publish(
        pipeline, {"doc_id": marker, "text": "The brindlecog of team a.", "metadata": {"team": "a"}}
    )
    follower.wait_for("team a's hit", lambda e: e.kind == "hit" and e.data["doc_id"] == marker)
    assert follower.hits_of(theirs) == []


def test_a_reconnect_resumes_after_its_last_event_or_is_reset(
    pipeline: Pipeline, run_id: str, follows: list[Follow]
) -> None:
    params: dict[str, Any] = {"q": "tamberline", "mode": "lexical", "expand": 0}
    first = follow(pipeline, follows, **params)
    answered(first)
    last = first.events[-1].id
    first.stop()
    missed = f"{run_id}-tamber"
    publish(pipeline, {"doc_id": missed, "text": "Tamberline appears while nobody listens."})
    indexed(pipeline, missed)
    again = follow(pipeline, follows, last=last, **params)
    hit = again.wait_for("the missed hit", lambda e: e.kind == "hit")
    assert hit.data["doc_id"] == missed
    assert "meta" not in again.kinds()  # resumed: the answer is not given again
    assert hit.id.split(":")[0] == last.split(":")[0]

    lost = follow(pipeline, follows, last="f0000000000000000:7", **params)
    answered(lost)
    assert lost.kinds()[:2] == ["reset", "meta"]
    assert [h.data["doc_id"] for h in lost.events if h.kind == "hit"] == [missed]


def test_a_reconnect_after_a_one_shot_answer_gets_204(pipeline: Pipeline) -> None:
    headers = {"Accept": "text/event-stream"}
    with httpx.Client(base_url=pipeline.base_url, timeout=30) as client:
        answer = client.get("/query", params={"q": "anything"}, headers=headers)
        assert answer.status_code == 200 and answer.text.startswith("retry: ")
        ids = [line[4:] for line in answer.text.splitlines() if line.startswith("id: ")]
        again = client.get(
            "/query", params={"q": "anything"}, headers={**headers, "Last-Event-ID": ids[-1]}
        )
        assert again.status_code == 204


def test_followers_over_the_cap_get_429(pipeline: Pipeline, follows: list[Follow]) -> None:
    refused = None
    for _ in range(FOLLOW_MAX + 1):
        opened = follow(pipeline, follows, q="capacity", mode="lexical", expand=0)
        if opened.status == 429:
            refused = opened
            break
    assert refused is not None, "no follower was refused"
    served = metric(pipeline, "docstream_followers")
    assert served == FOLLOW_MAX


def test_another_api_process_hears_of_what_both_sinks_wrote(
    pipeline: Pipeline, run_id: str
) -> None:
    """What lets any number of API processes follow: each reads every notice
    for itself, with no consumer group to share. A second reader of the topic,
    as another API process has (its consumer and join, in this process), hears
    of a document once both of the worker's sinks wrote it, and of its delete."""
    doc_id = f"{run_id}-second-reader"
    ready = asyncio.run(_second_reader(pipeline, doc_id))
    assert [(d.doc_id, d.deleted) for d in ready] == [(doc_id, False), (doc_id, True)]
    assert ready[0].written_at > 0 and ready[0].correlation_id


async def _second_reader(pipeline: Pipeline, doc_id: str) -> list[ReadyDoc]:
    join = NoticeJoin(SINKS)
    ready: list[ReadyDoc] = []

    def on_notice(notice: IndexedNotice) -> None:
        ready.extend(d for d in join.add(notice, time.time()) if d.doc_id == doc_id)

    reader = NoticeConsumer(pipeline.settings.kafka, on_notice)
    reader.start()
    try:
        await asyncio.to_thread(reader.assigned.wait, 60)
        text = "The second reader hears of this one."
        await asyncio.to_thread(publish, pipeline, {"doc_id": doc_id, "text": text})
        await _until(lambda: len(ready) >= 1)
        await asyncio.to_thread(delete, pipeline, doc_id)
        await _until(lambda: len(ready) >= 2)
    finally:
        await reader.stop()
    return ready


async def _until(condition: Callable[[], bool], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the second reader heard nothing"
        await asyncio.sleep(0.2)
