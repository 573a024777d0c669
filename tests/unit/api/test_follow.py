"""Follow mode's logic with fakes: joining the sinks' notices, the thresholds,
matching and retracting per follower, filters, the cap, slow followers, and
the replay window of a reconnect."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import REGISTRY

from api.follow.follower import Follower, Thresholds, parse_event_id
from api.follow.hub import FollowHub, thresholds_of
from api.follow.join import NoticeJoin, ReadyDoc
from api.search import FAILED_MESSAGE, Query, QueryLimits, SearchService
from core.logs import JsonFormatter
from core.notices import IndexedDoc, IndexedNotice, NoticeError, notice_of
from core.settings import ApiSettings
from core.types import (
    DocumentDeletion,
    Hit,
    IndexedChunk,
    SearchFilter,
    StoreNeedsOperator,
    StoreUnavailable,
)
from tests.fakes import FakeStore, hit, misread
from tests.profiles import FixedProfile

SINKS = frozenset({"qdrant-sink", "neo4j-sink"})
ERRORS = "docstream_query_errors_total"
CLOSED = "docstream_follow_closed_total"


def notice(sink: str, *docs: IndexedDoc, at: float = 100.0) -> IndexedNotice:
    return IndexedNotice(sink, at, docs)


def doc(doc_id: str, chunks: tuple[str, ...], count: int, version: int = 1) -> IndexedDoc:
    return IndexedDoc(doc_id, version, chunks=chunks, chunk_count=count)


# The notices and their join.


def chunk(doc_id: str, index: int, count: int) -> IndexedChunk:
    return IndexedChunk(f"{doc_id}#{index}", doc_id, 1, index, count, "T", "text", [0.1], "corr")


def test_a_notice_round_trips_and_garbage_is_a_notice_error() -> None:
    sent = notice("qdrant-sink", doc("a", ("a#0",), 1), IndexedDoc("b", 2, deleted=True))
    assert IndexedNotice.decode(sent.encode()) == sent
    for raw in (b"not json", b"{}", b'{"sink": "x", "written_at": "soon", "docs": []}'):
        with pytest.raises(NoticeError):
            IndexedNotice.decode(raw)


def test_a_written_batch_becomes_one_notice_grouped_per_document_version() -> None:
    events = [chunk("a", 0, 2), chunk("a", 1, 2), DocumentDeletion("b", 3, "c")]
    made = notice_of("qdrant-sink", events, 5.0)
    assert made.sink == "qdrant-sink" and made.written_at == 5.0
    [a, b] = made.docs
    assert (a.doc_id, len(a.chunks), a.chunk_count, a.deleted) == ("a", 2, 2, False)
    assert (b.doc_id, b.version, b.deleted) == ("b", 3, True)


def test_a_version_is_ready_once_every_sink_wrote_all_its_chunks() -> None:
    join = NoticeJoin(SINKS)
    assert join.add(notice("qdrant-sink", doc("a", ("a#0", "a#1"), 3)), 1) == []
    assert join.add(notice("neo4j-sink", doc("a", ("a#0", "a#1", "a#2"), 3)), 1) == []
    # The document's last chunk came in the qdrant sink's next batch.
    [ready] = join.add(notice("qdrant-sink", doc("a", ("a#2",), 3), at=107.0), 2)
    assert ready == ReadyDoc("a", 1, False, 107.0, "")
    assert len(join) == 0


def test_a_deletion_is_ready_once_every_sink_deleted() -> None:
    join = NoticeJoin(SINKS)
    gone = IndexedDoc("a", 2, deleted=True)
    assert join.add(notice("neo4j-sink", gone), 1) == []
    assert [r.deleted for r in join.add(notice("qdrant-sink", gone), 1)] == [True]


def test_unknown_sinks_are_ignored_and_waiting_versions_are_bounded() -> None:
    join = NoticeJoin(SINKS, max_pending=2, expire_s=10)
    assert join.add(notice("rebuild", doc("a", ("a#0",), 1)), 0) == []
    for name in "bcd":
        join.add(notice("qdrant-sink", doc(name, (f"{name}#0",), 1)), 0)
    assert len(join) == 2 and join.expired == 1
    join.add(notice("qdrant-sink", doc("e", ("e#0",), 1)), 11)  # c and d too old by now
    assert len(join) == 1 and join.expired == 3


# Thresholds.


def test_thresholds_are_the_kth_score_per_retriever_or_none_under_k() -> None:
    ranked = {"dense": [hit("a", score=0.9), hit("b", score=0.5)], "lexical": [hit("c", score=3)]}
    bars = thresholds_of(Query("x", k=2), ranked)
    assert bars.per_retriever == {"dense": 0.5, "lexical": None}
    assert bars.admits("dense", 0.5) and not bars.admits("dense", 0.49)
    assert bars.admits("lexical", 0.01)
    assert not bars.admits("graph", 1.0)


def test_min_score_applies_to_the_modes_main_score() -> None:
    assert thresholds_of(Query("x", mode="lexical", min_score=2), {}).main == "lexical"
    bars = Thresholds({"dense": None, "lexical": None}, min_score=0.6, main="dense")
    assert bars.admits("dense", 0.6) and not bars.admits("dense", 0.59)
    assert not bars.admits("lexical", 100)


# Matching, per follower.


@dataclass
class DocsStore(FakeStore):
    """A store holding chunks per document: a search returns those of the
    filter's documents (the filter as a real store applies it), best first."""

    chunks: dict[str, list[Hit]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def _found(self, where: Any, limit: int) -> list[Hit]:
        self.filters.append(where)
        found = [
            h
            for doc_id, hits in self.chunks.items()
            for h in hits
            if (not where or not where.doc_ids or doc_id in where.doc_ids)
            and (not where or not where.sources or self.sources.get(doc_id) in where.sources)
        ]
        return sorted(found, key=lambda h: -h.score)[:limit]

    async def search(self, vector: Any, limit: int, where: Any = None) -> list[Hit]:
        return self._found(where, limit)

    async def search_lexical(self, text: str, limit: int, where: Any = None) -> list[Hit]:
        return [h for h in self._found(where, limit) if h.retriever == "lexical"]


def hub_over(store: DocsStore, **settings: Any) -> FollowHub:
    search = SearchService(FixedProfile(), store, FakeStore(), QueryLimits())  # type: ignore[arg-type]
    return FollowHub(search, ApiSettings(**settings), SINKS, clock=lambda: 1000.0)


async def following(hub: FollowHub, query: Query) -> Follower:
    follower = hub.open(query)
    assert follower is not None
    ranked, _ = await hub.search.retrieve(query, 30)
    shown = [(h.chunk_id, h.doc_id) for hits in ranked.values() for h in hits[: query.k]]
    await hub.started(follower, ranked, shown)
    return follower


def sent(follower: Follower) -> list[tuple[str, str]]:
    return [(e.kind, e.data["chunk_id"]) for p in follower.take() for e in p.events]


def ready(doc_id: str, version: int = 1, deleted: bool = False) -> ReadyDoc:
    return ReadyDoc(doc_id, version, deleted, 999.0)


async def test_a_new_chunk_that_ranks_within_k_is_a_hit_and_one_below_is_not() -> None:
    store = DocsStore(chunks={"old": [hit("o1", "old", score=0.8), hit("o2", "old", score=0.6)]})
    hub = hub_over(store)
    follower = await following(hub, Query("x", k=2, mode="dense"))
    store.chunks["new"] = [hit("n1", "new", score=0.7), hit("n2", "new", 1, score=0.5)]
    await hub.deliver([ready("new")])
    assert sent(follower) == [("hit", "n1")]
    assert store.filters[-1].doc_ids == ("new",)  # only the new document was searched


async def test_under_k_any_match_is_a_hit() -> None:
    store = DocsStore(chunks={"old": [hit("o1", "old", score=0.8)]})
    hub = hub_over(store)
    follower = await following(hub, Query("x", k=5, mode="dense"))
    store.chunks["new"] = [hit("n1", "new", score=0.01)]
    await hub.deliver([ready("new")])
    assert sent(follower) == [("hit", "n1")]


async def test_a_deleted_document_retracts_what_the_client_was_shown() -> None:
    store = DocsStore(chunks={"a": [hit("a1", "a", score=0.8), hit("a2", "a", 1, score=0.7)]})
    hub = hub_over(store)
    follower = await following(hub, Query("x", k=5, mode="dense"))
    assert set(follower.shown) == {"a1", "a2"}
    del store.chunks["a"]
    await hub.deliver([ready("a", 2, deleted=True)])
    events = [e for p in follower.take() for e in p.events]
    assert [(e.kind, e.data["chunk_id"], e.data["reason"]) for e in events] == [
        ("retract", "a1", "deleted"),
        ("retract", "a2", "deleted"),
    ]
    assert follower.shown == {}


async def test_a_re_cut_document_retracts_its_dropped_chunks_and_resends_the_kept() -> None:
    store = DocsStore(chunks={"a": [hit("a1", "a", score=0.8), hit("a2", "a", 1, score=0.7)]})
    hub = hub_over(store)
    follower = await following(hub, Query("x", k=5, mode="dense"))
    store.chunks["a"] = [hit("a1", "a", score=0.9)]  # version 2 is one chunk
    await hub.deliver([ready("a", 2)])
    assert sent(follower) == [("retract", "a2"), ("hit", "a1")]


async def test_filters_hold_in_follow_mode() -> None:
    store = DocsStore(chunks={}, sources={"mine": "wiki", "other": "mail"})
    hub = hub_over(store)
    by_source = await following(
        hub, Query("x", mode="dense", where=SearchFilter(sources=("wiki",)))
    )
    by_doc = await following(hub, Query("x", mode="dense", where=SearchFilter(doc_ids=("mine",))))
    store.chunks = {"mine": [hit("m1", "mine")], "other": [hit("x1", "other")]}
    searches = len(store.filters)
    await hub.deliver([ready("mine"), ready("other")])
    assert sent(by_source) == [("hit", "m1")]
    assert sent(by_doc) == [("hit", "m1")]
    # The doc_id follower searched only its own document; the source filter reached the store.
    assert {f.doc_ids for f in store.filters[searches:]} == {("mine",), ("mine", "other")}
    assert all(f.sources == ("wiki",) for f in store.filters[searches:] if len(f.doc_ids) == 2)


async def test_notices_during_the_first_answer_apply_once_it_was_given() -> None:
    store = DocsStore(chunks={})
    hub = hub_over(store)
    follower = hub.open(Query("x", mode="dense"))
    assert follower is not None
    store.chunks["early"] = [hit("e1", "early")]
    await hub.deliver([ready("early")])
    assert follower.take() == [] and len(follower.backlog) == 1
    await hub.started(follower, {"dense": []}, [])
    assert sent(follower) == [("hit", "e1")]


async def test_the_cap_refuses_followers_over_it_and_a_left_one_expires() -> None:
    now = [1000.0]
    search = SearchService(FixedProfile(), DocsStore(), FakeStore(), QueryLimits())  # type: ignore[arg-type]
    hub = FollowHub(search, ApiSettings(follow_max=2, follow_resume_s=30), SINKS, lambda: now[0])
    first, second = hub.open(Query("a")), hub.open(Query("b"))
    assert first is not None and second is not None
    assert hub.open(Query("c")) is None
    hub.left(first)
    now[0] += 10
    assert hub.open(Query("c")) is None  # kept for its reconnect
    assert hub.find(first.stream) is first
    now[0] += 21
    assert hub.open(Query("c")) is not None  # the first expired
    assert hub.find(first.stream) is None


async def test_a_follower_that_stops_reading_is_dropped_not_buffered() -> None:
    store = DocsStore(chunks={})
    hub = hub_over(store, follow_queue_events=3)
    follower = await following(hub, Query("x", k=50, mode="dense"))
    for n in range(4):
        store.chunks[f"d{n}"] = [hit(f"c{n}", f"d{n}")]
        await hub.deliver([ready(f"d{n}")])
    assert follower.dropped and follower.pending == type(follower.pending)()
    store.chunks["more"] = [hit("m", "more")]
    await hub.deliver([ready("more")])
    assert follower.take() == []  # nothing more is matched or kept for it


def test_a_reconnect_gets_the_kept_events_after_its_last_id_or_none() -> None:
    follower = Follower(Query("x"), replay_events=3, queue_events=10)
    ids = [follower.event("hit", {"n": n}).id for n in range(5)]
    assert parse_event_id(str(ids[3])) == (follower.stream, 4)
    assert [e.data["n"] for e in follower.since(3) or []] == [3, 4]
    assert follower.since(5) == []
    assert follower.since(1) is None  # event 2 is no longer kept
    assert follower.since(9) is None  # an id this stream never sent
    assert parse_event_id("garbage") is None


async def test_the_delivery_task_coalesces_what_arrived_meanwhile() -> None:
    store = DocsStore(chunks={"a": [hit("a1", "a")], "b": [hit("b1", "b")]})
    hub = hub_over(store)
    follower = await following(hub, Query("x", k=50, mode="dense"))
    follower.shown.clear()
    searches = len(store.filters)
    for name in "ab":
        for sink in SINKS:
            hub.on_notice(notice(sink, doc(name, (f"{name}1",), 1)))
    await asyncio.sleep(0.01)
    assert sorted(sent(follower)) == [("hit", "a1"), ("hit", "b1")]
    assert len(store.filters) - searches == 1  # one search for both documents
    assert hub.notified == 2


# The edge: status codes, and a follower's stream.


def edge(hub: FollowHub | None, **settings: Any) -> Any:
    from starlette.testclient import TestClient

    from api.app import create_api
    from api.health import Health

    search = (
        hub.search
        if hub
        else SearchService(FixedProfile(), DocsStore(), FakeStore(), QueryLimits())  # type: ignore[arg-type]
    )
    return TestClient(create_api(search, Health({}), settings=ApiSettings(**settings), follow=hub))


SSE = {"Accept": "text/event-stream"}


def test_follow_needs_a_stream_and_a_hub() -> None:
    hub = hub_over(DocsStore())
    answer = edge(hub).get("/query", params={"q": "x", "follow": "true"})
    assert answer.status_code == 422 and answer.json()["field"] == "follow"
    answer = edge(None).get("/query", params={"q": "x", "follow": "true"}, headers=SSE)
    assert answer.status_code == 503
    answer = edge(hub).get("/query", params={"q": "x", "follow": "maybe"}, headers=SSE)
    assert answer.status_code == 422 and answer.json()["field"] == "follow"


def test_a_follower_over_the_cap_gets_a_429_problem() -> None:
    hub = hub_over(DocsStore(), follow_max=0)
    answer = edge(hub, follow_max=0).get("/query", params={"q": "x", "follow": "true"}, headers=SSE)
    assert answer.status_code == 429
    assert answer.headers["content-type"] == "application/problem+json"
    assert "followers" in answer.json()["detail"] and answer.headers["retry-after"]


def test_a_reconnect_after_a_finished_one_shot_answer_gets_204() -> None:
    api = edge(None)
    with api.stream("GET", "/query", params={"q": "x"}, headers=SSE) as response:
        body = "".join(response.iter_text())
    last = [line[4:] for line in body.splitlines() if line.startswith("id: ")][-1]
    again = api.get("/query", params={"q": "x"}, headers={**SSE, "Last-Event-ID": last})
    assert again.status_code == 204 and again.content == b""
    assert api.get("/query", params={"q": "x"}, headers=SSE).status_code == 200


async def events_of(stream: Any, count: int) -> list[Any]:
    got: list[Any] = []
    while len(got) < count:
        got += await asyncio.wait_for(anext(stream), 2)
    return got


async def test_a_followers_stream_answers_then_sends_new_hits_and_resumes_after_its_last_id() -> (
    None
):
    from api.follow.stream import following as stream_of

    store = DocsStore(chunks={"a": [hit("a1", "a")]})
    hub = hub_over(store)
    follower = hub.open(Query("x", k=5, mode="dense", expand=0))
    assert follower is not None
    stream = stream_of(hub, follower, {"q": "x"})
    answer = await events_of(stream, 3)
    assert [e.kind for e in answer] == ["meta", "hit", "done"]
    assert [e.id for e in answer] == [f"{follower.stream}:{n}" for n in (1, 2, 3)]
    store.chunks["b"] = [hit("b1", "b")]
    await hub.deliver([ready("b")])
    [new] = await events_of(stream, 1)
    assert (new.kind, new.data["chunk_id"], new.data["follow"]) == ("hit", "b1", True)
    await stream.aclose()  # the client left: kept for a reconnect
    assert follower.left_at is not None and hub.find(follower.stream) is follower
    del store.chunks["b"]
    await hub.deliver([ready("b", 2, deleted=True)])
    resumed = stream_of(hub, follower, {}, resume=follower.since(3))
    missed = await events_of(resumed, 2)
    assert [(e.kind, e.data["chunk_id"]) for e in missed] == [("hit", "b1"), ("retract", "b1")]
    with pytest.raises(TimeoutError):  # and not once more from the queue
        await asyncio.wait_for(anext(resumed), 0.2)
    await resumed.aclose()


async def test_a_dropped_follower_gets_a_final_dropped_event() -> None:
    from api.follow.stream import following as stream_of

    store = DocsStore(chunks={})
    hub = hub_over(store, follow_queue_events=1)
    follower = hub.open(Query("x", k=5, mode="dense", expand=0))
    assert follower is not None
    stream = stream_of(hub, follower, {})
    await events_of(stream, 2)  # meta, done
    store.chunks = {"a": [hit("a1", "a"), hit("a2", "a", 1)]}
    await hub.deliver([ready("a")])  # two events for a queue of one
    [last] = await events_of(stream, 1)
    assert last.kind == "dropped"
    await stream.aclose()
    assert hub.find(follower.stream) is None


async def test_a_bug_while_delivering_is_logged_loudly(caplog: pytest.LogCaptureFixture) -> None:
    store = DocsStore(chunks={"a": [hit("a1", "a")]})
    hub = hub_over(store)
    follower = await following(hub, Query("x", k=50, mode="dense"))

    def broken(*_: Any) -> None:
        raise RuntimeError("a bug in the follower's queue")

    follower.push = broken  # type: ignore[method-assign]
    for sink in SINKS:
        hub.on_notice(notice(sink, doc("a", ("a1",), 1, version=2)))
    await asyncio.sleep(0.01)
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "delivering notices failed" in record.getMessage() and record.exc_info


# A store's failure in a round loses that round; a bug of ours ends the follower.


@dataclass
class FaultyDocs(DocsStore):
    """DocsStore whose replies our code misreads (`broken`: a bug of ours), or
    whose searches fail as the store contract says (`failure`)."""

    broken: bool = False
    failure: BaseException | None = None
    stall_s: float = 0.0

    def _found(self, where: Any, limit: int) -> list[Hit]:
        if self.failure is not None:
            raise self.failure
        found = super()._found(where, limit)
        return misread(found) if self.broken else found

    async def search(self, vector: Any, limit: int, where: Any = None) -> list[Hit]:
        await asyncio.sleep(self.stall_s)
        return await super().search(vector, limit, where)


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_bug_reading_a_stores_reply_in_a_round_ends_the_follower_with_an_error_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from api.follow.stream import following as stream_of

    store = FaultyDocs(chunks={"a": [hit("a1", "a")]})
    hub = hub_over(store)
    follower = hub.open(Query("x", k=5, mode="dense", expand=0))
    assert follower is not None
    stream = stream_of(hub, follower, {"correlation_id": "corr-f"})
    assert [e.kind for e in await events_of(stream, 3)] == ["meta", "hit", "done"]
    errors, closed = counted(ERRORS, stage="dense"), counted(CLOSED, reason="error")
    store.broken = True
    store.chunks["b"] = [hit("b1", "b")]
    await hub.deliver([ready("b")])
    [last] = await events_of(stream, 1)
    assert last.kind == "error"
    assert last.data == {"message": FAILED_MESSAGE, "correlation_id": "corr-f"}
    assert last.id == f"{follower.stream}:4"
    with pytest.raises(StopAsyncIteration):  # the stream ends there
        await anext(stream)
    assert hub.find(follower.stream) is None, "forgotten once its stream ended"
    assert counted(ERRORS, stage="dense") == errors + 1
    assert counted(CLOSED, reason="error") == closed + 1
    assert hub.match_failures == 0, "a bug is no lost round"
    [record] = [r for r in caplog.records if r.exc_info]
    line = json.loads(JsonFormatter().format(record))
    assert line["correlation_id"] == "corr-f" and "TypeError" in line["exc"]
    searches = len(store.filters)
    await hub.deliver([ready("b", 2)])
    assert len(store.filters) == searches, "nothing more is matched for it"


async def test_a_bug_in_a_followers_first_answer_ends_its_stream_with_an_error_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from api.follow.stream import following as stream_of

    store = FaultyDocs(chunks={"a": [hit("a1", "a")]}, broken=True)
    hub = hub_over(store)
    follower = hub.open(Query("x", k=5, mode="dense", expand=0))
    assert follower is not None
    closed = counted(CLOSED, reason="error")
    stream = stream_of(hub, follower, {"correlation_id": "corr-g"})
    events = await events_of(stream, 2)
    assert [e.kind for e in events] == ["meta", "error"]
    assert events[1].data["correlation_id"] == "corr-g"
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    assert hub.find(follower.stream) is None
    assert counted(CLOSED, reason="error") == closed + 1
    assert len([r for r in caplog.records if r.exc_info]) == 1


@pytest.mark.parametrize(
    "fault",
    [
        {"failure": StoreUnavailable("qdrant", "down")},
        {"failure": StoreNeedsOperator("qdrant", "disk full", "disk_full")},
        {"stall_s": 1.0},  # slower than the store timeout
    ],
    ids=["unavailable", "needs_operator", "timeout"],
)
async def test_a_store_failing_in_a_round_loses_that_round_only(
    fault: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    store = FaultyDocs(chunks={"a": [hit("a1", "a")]})
    limits = QueryLimits(store_timeout_s=0.05)
    search = SearchService(FixedProfile(), store, FakeStore(), limits)  # type: ignore[arg-type]
    hub = FollowHub(search, ApiSettings(), SINKS, clock=lambda: 1000.0)
    follower = await following(hub, Query("x", k=5, mode="dense"))
    errors = counted(ERRORS, stage="dense")
    for name, value in fault.items():
        setattr(store, name, value)
    store.chunks["a"] = [hit("a1", "a", score=0.5)]  # version 2, while the store fails
    await hub.deliver([ready("a", 2)])
    assert follower.take() == [], "no retract for what the store did not answer"
    assert hub.match_failures == 1 and not follower.ended
    assert "follow: matching failed" in caplog.text
    assert counted(ERRORS, stage="dense") == errors
    assert [r for r in caplog.records if r.exc_info] == []
    store.failure, store.stall_s = None, 0.0
    await hub.deliver([ready("a", 3)])
    assert sent(follower) == [("hit", "a1")], "the next round matches again"
