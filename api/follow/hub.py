"""The followers of this API process: the cap, the notices they hear of, and
the matching of new chunks against each follower's query.

Ready documents (every sink wrote them) are delivered in order by one task,
coalescing what arrived meanwhile. Per follower, the new and changed documents
are searched with the follower's own query, mode and filters, restricted to
their doc ids (the filter code of one-shot mode, in the store), and a chunk
becomes a `hit` when it would have ranked within the follower's `k` (its score
reaches the k-th of the first answer's, per retriever) or reaches `min_score`.
A chunk the client was shown that the indexes no longer return for its query
(the document was deleted or re-cut) becomes a `retract`.

A store that fails or is slow during a follower's round loses that round for
it (what the store did not return must not read as retracted). Any other
exception is a bug of ours: it is logged and counted once, and the follower's
stream ends with an `error` event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from api.follow.follower import Follower, Thresholds
from api.follow.join import NoticeJoin, ReadyDoc
from api.search import Query, SearchService, hit_payload, report_failure
from api.sse import Event
from core.correlation import current_correlation_id
from core.logs import get_logger
from core.metrics import FOLLOW_CLOSED, FOLLOW_NOTIFICATIONS, FOLLOWERS
from core.notices import IndexedNotice
from core.settings import ApiSettings
from core.types import Hit

log = get_logger(__name__)
SINKS = frozenset({"qdrant-sink", "neo4j-sink"})
MATCH_CONCURRENCY = 16  # store queries in flight at once while matching


def thresholds_of(query: Query, ranked: dict[str, list[Hit]]) -> Thresholds:
    bars: dict[str, float | None] = {}
    for retriever, hits in ranked.items():
        bars[retriever] = hits[query.k - 1].score if len(hits) >= query.k else None
    if not ranked:  # the first answer failed: anything that matches is new to the client
        retrievers = {"dense": ("dense",), "lexical": ("lexical",)}.get(
            query.mode, ("dense", "lexical")
        )
        bars = dict.fromkeys(retrievers)
    main = "lexical" if query.mode == "lexical" else "dense"
    return Thresholds(bars, query.min_score, main)


class FollowHub:
    def __init__(
        self,
        search: SearchService,
        settings: ApiSettings,
        sinks: frozenset[str] = SINKS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.search = search
        self.settings = settings
        self.clock = clock
        self.join = NoticeJoin(sinks)
        self.followers: dict[str, Follower] = {}
        self.notified = 0
        self.match_failures = 0
        self._ready: asyncio.Queue[list[ReadyDoc]] = asyncio.Queue()
        self._delivering: asyncio.Task[None] | None = None
        self._limit = asyncio.Semaphore(MATCH_CONCURRENCY)

    # Followers come and go.

    def open(self, query: Query) -> Follower | None:
        """A new follower, or None when this process serves its cap already."""
        self.sweep()
        if len(self.followers) >= self.settings.follow_max:
            FOLLOW_CLOSED.labels("over_cap").inc()
            return None
        follower = Follower(
            query, self.settings.follow_replay_events, self.settings.follow_queue_events
        )
        self.followers[follower.stream] = follower
        FOLLOWERS.set(len(self.followers))
        return follower

    def find(self, stream: str) -> Follower | None:
        self.sweep()
        return self.followers.get(stream)

    def left(self, follower: Follower) -> None:
        """Its client went away: kept `follow_resume_s` for a reconnect."""
        follower.left_at = self.clock()
        if follower.ended:
            self.close(follower)

    def close(self, follower: Follower) -> None:
        if self.followers.pop(follower.stream, None) is not None:
            FOLLOWERS.set(len(self.followers))

    def sweep(self) -> None:
        now = self.clock()
        for follower in list(self.followers.values()):
            if follower.left_at is not None and (
                follower.ended or now - follower.left_at > self.settings.follow_resume_s
            ):
                FOLLOW_CLOSED.labels("expired").inc()
                self.close(follower)

    async def started(
        self, follower: Follower, ranked: dict[str, list[Hit]], shown: Iterable[tuple[str, str]]
    ) -> None:
        """Its first answer went out: from now on notices apply to it,
        beginning with those that came while it was being answered."""
        follower.thresholds = thresholds_of(follower.query, ranked)
        follower.shown.update(shown)
        follower.ready = True
        backlog, follower.backlog = follower.backlog, []
        if backlog:
            await self._apply([follower], backlog)

    # Notices come in.

    def on_notice(self, notice: IndexedNotice) -> None:
        ready = self.join.add(notice, self.clock())
        if not ready:
            return
        FOLLOW_NOTIFICATIONS.inc(len(ready))
        self.notified += len(ready)
        self._ready.put_nowait(ready)
        if self._delivering is None or self._delivering.done():
            self._delivering = asyncio.create_task(self._deliver())
            self._delivering.add_done_callback(self._failed)

    @staticmethod
    def _failed(task: asyncio.Task[None]) -> None:
        """A bug in delivering fails loudly: logged with its traceback, not
        kept in a task nobody awaits (the next notice starts a new one)."""
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("follow: delivering notices failed", exc_info=exc)

    async def _deliver(self) -> None:
        while not self._ready.empty():
            docs: list[ReadyDoc] = []
            while not self._ready.empty():  # what came meanwhile goes in one round
                docs.extend(self._ready.get_nowait())
            await self.deliver(docs)

    async def deliver(self, docs: list[ReadyDoc]) -> None:
        self.sweep()
        matched: list[Follower] = []
        for follower in list(self.followers.values()):
            if follower.ended:
                continue
            if not follower.ready:
                follower.backlog.extend(docs)
                if len(follower.backlog) > self.settings.follow_queue_events:
                    follower.dropped = True  # bounded even while its answer is slow
                    follower.backlog.clear()
                    follower.wake.set()
                continue
            matched.append(follower)
        await self._apply(matched, docs)

    async def _apply(self, followers: list[Follower], docs: list[ReadyDoc]) -> None:
        """One round per follower, side by side. A bug in one round ends that
        follower only (`fail`); a store's failure only loses the round."""
        rounds = [self._match(follower, docs) for follower in followers]
        outcomes = await asyncio.gather(*rounds, return_exceptions=True)
        for follower, outcome in zip(followers, outcomes, strict=True):
            if isinstance(outcome, Exception):  # a bug: `_found` takes a store's failure
                self.fail(follower, outcome, "follow")
            elif isinstance(outcome, BaseException):
                raise outcome
            elif outcome is not None:
                self._push(follower, *outcome)

    def fail(self, follower: Follower, exc: BaseException, stage: str) -> None:
        """A bug of ours ended this follower: logged with its traceback and
        counted once, and its stream ends with an `error` event."""
        error = report_failure(exc, follower.correlation_id, stage)
        if not follower.ended:
            FOLLOW_CLOSED.labels("error").inc()
        follower.fail(error)

    async def _match(
        self, follower: Follower, docs: list[ReadyDoc]
    ) -> tuple[list[Event], float] | None:
        # Every line logged in this round names the follower's request.
        token = current_correlation_id.set(follower.correlation_id)
        try:
            return await self._round(follower, docs)
        finally:
            current_correlation_id.reset(token)

    async def _round(
        self, follower: Follower, docs: list[ReadyDoc]
    ) -> tuple[list[Event], float] | None:
        """The events this round has for `follower` and when what they say was
        written; None when it has none (or lost the round to a store)."""
        latest: dict[str, ReadyDoc] = {}
        for doc in docs:
            if doc.doc_id not in latest or doc.version >= latest[doc.doc_id].version:
                latest[doc.doc_id] = doc
        where = follower.query.where
        mine = [d for d in latest.values() if not where.doc_ids or d.doc_id in where.doc_ids]
        if not mine:
            return None
        found = await self._found(follower, [d.doc_id for d in mine if not d.deleted])
        if found is None:  # a store failed or was slow: this round is lost for this follower
            self.match_failures += 1
            log.warning("follow: matching failed", extra={"docs": len(mine)})
            return None
        return self._events(follower, mine, found), max(d.written_at for d in mine)

    @staticmethod
    def _push(follower: Follower, events: list[Event], written_at: float) -> None:
        follower.push(events, written_at)
        if follower.dropped:
            FOLLOW_CLOSED.labels("dropped").inc()
            log.warning("follow: a follower stopped reading and was dropped")

    async def _found(
        self, follower: Follower, doc_ids: list[str]
    ) -> dict[str, dict[str, Any]] | None:
        """The chunks of these documents that belong in the follower's answer;
        None when a store failed or was slow (the search logged it as
        `query degraded`). A bug of ours raises."""
        if not doc_ids:
            return {}
        query = replace(follower.query, where=replace(follower.query.where, doc_ids=tuple(doc_ids)))
        async with self._limit:
            ranked, degraded = await self.search.retrieve(query, self.search.limits.max_candidates)
        if degraded:
            return None
        found: dict[str, dict[str, Any]] = {}
        for retriever, hits in ranked.items():
            for position, hit in enumerate(hits, start=1):
                if hit.chunk_id in found or not follower.thresholds.admits(retriever, hit.score):
                    continue
                payload = hit_payload(
                    0, replace(hit, score=round(hit.score, 6)), {retriever: position}
                )
                found[hit.chunk_id] = {**payload, "rank": None, "follow": True}
        return found

    @staticmethod
    def _events(
        follower: Follower, docs: list[ReadyDoc], found: dict[str, dict[str, Any]]
    ) -> list[Event]:
        events = []
        changed = {d.doc_id: d for d in docs}
        for chunk_id, doc_id in list(follower.shown.items()):
            if doc_id in changed and chunk_id not in found:
                del follower.shown[chunk_id]
                reason = "deleted" if changed[doc_id].deleted else "changed"
                data = {
                    "chunk_id": chunk_id,
                    "doc_id": doc_id,
                    "reason": reason,
                    "indexed_at": changed[doc_id].written_at,
                }
                events.append(follower.event("retract", data))
        for chunk_id, payload in found.items():
            follower.shown[chunk_id] = payload["doc_id"]
            payload["version"] = changed[payload["doc_id"]].version
            payload["indexed_at"] = changed[payload["doc_id"]].written_at
            events.append(follower.event("hit", payload))
        return events

    def stats(self) -> dict[str, Any]:
        return {
            "followers": len(self.followers),
            "notified": self.notified,
            "pending_versions": len(self.join),
            "match_failures": self.match_failures,
        }
