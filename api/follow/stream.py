"""The event streams of `/query`: a one-shot answer, and a follower's.

A one-shot answer ends with `done`; its ids are `q<token>:<n>`, so a browser's
EventSource that reconnects after it (as the SSE standard has it do) sends a
`Last-Event-ID` the edge recognises and answers with 204, which tells it to
stop. A follower's stream gives its answer, then its `hit` and `retract`
events as they come, until the client leaves or is dropped.

A bug of ours (not a store's failure, which only degrades) ends either stream
with an `error` event: `{"message", "correlation_id"}`, and no more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from api.follow.follower import Follower, new_stream
from api.follow.hub import FollowHub
from api.search import Query, SearchService, report_failure
from api.sse import Event
from core.logs import get_logger
from core.metrics import FOLLOW_DELAY_SECONDS, FOLLOW_EVENTS, QUERY_CANCELLED, QUERY_IN_FLIGHT
from core.types import Hit

log = get_logger(__name__)
ONE_SHOT = "q"


def finished_one_shot(last_event_id: str | None) -> bool:
    """A reconnect after a one-shot answer: it is not run again (204)."""
    return bool(last_event_id) and str(last_event_id).startswith(ONE_SHOT)


async def one_shot(
    search: SearchService, query: Query, meta: dict[str, Any]
) -> AsyncIterator[list[Event]]:
    stream = new_stream(ONE_SHOT)
    seq = 0
    QUERY_IN_FLIGHT.inc()  # down again however the stream ends: a leak would show
    try:
        yield [Event("meta", meta, f"{stream}:{seq}")]
        try:
            async for burst in search.bursts(query):
                events = [
                    Event(e.kind, e.data, f"{stream}:{seq + i}") for i, e in enumerate(burst, 1)
                ]
                seq += len(events)
                yield events
        except (asyncio.CancelledError, GeneratorExit):
            # The client went away: the store calls in flight are cancelled with us.
            QUERY_CANCELLED.inc()
            log.info("query cancelled: the client disconnected", extra={"after_events": seq})
            raise
        except Exception as exc:  # a bug of ours: the answer ends, and says so
            error = report_failure(exc, meta.get("correlation_id", ""))
            yield [Event("error", error, f"{stream}:{seq + 1}")]
    finally:
        QUERY_IN_FLIGHT.dec()


async def following(
    hub: FollowHub,
    follower: Follower,
    meta: dict[str, Any],
    *,
    resume: list[Event] | None = None,
    reset: str = "",
) -> AsyncIterator[list[Event]]:
    """A follower's stream. `resume`: the kept events a reconnect missed (the
    answer is not given again); `reset`: why an earlier stream could not be
    resumed (the client starts over with this one)."""
    follower.connection += 1
    mine = follower.connection
    follower.wake.set()  # an older connection of this follower ends
    follower.wake = wake = asyncio.Event()
    follower.left_at = None
    follower.correlation_id = meta.get("correlation_id") or follower.correlation_id
    try:
        if resume is not None:
            follower.take()  # queued while away: the resumed events hold them
            if resume:
                yield resume
        else:
            async for burst in _answer(hub, follower, meta, reset):
                yield burst
        while follower.connection == mine:
            if follower.dropped:
                reason = "the client did not read its events fast enough"
                yield [Event("dropped", {"reason": reason}, f"{follower.stream}:{follower.seq}")]
                return
            if follower.error is not None:
                yield [follower.event("error", follower.error)]
                return
            if not follower.pending:
                await wake.wait()
                wake.clear()
                continue
            for pending in follower.take():
                yield pending.events
                sent = time.time()
                for event in pending.events:
                    FOLLOW_EVENTS.labels(event.kind).inc()
                    if pending.written_at is not None:
                        FOLLOW_DELAY_SECONDS.observe(max(0.0, sent - pending.written_at))
    finally:
        if follower.connection == mine:
            hub.left(follower)


async def _answer(
    hub: FollowHub, follower: Follower, meta: dict[str, Any], reset: str
) -> AsyncIterator[list[Event]]:
    first = [follower.event("reset", {"reason": reset})] if reset else []
    first.append(follower.event("meta", {**meta, "follow": True, "stream": follower.stream}))
    ranked: dict[str, list[Hit]] = {}
    shown: list[tuple[str, str]] = []
    QUERY_IN_FLIGHT.inc()
    try:
        async for burst in hub.search.bursts(follower.query, ranked):
            events = [follower.event(e.kind, e.data) for e in burst]
            shown += [(e.data["chunk_id"], e.data["doc_id"]) for e in burst if e.kind == "hit"]
            yield first + events
            first = []
    except Exception as exc:  # a bug of ours: the stream ends with `error` (`following`)
        hub.fail(follower, exc, "answer")
        if first:
            yield first
        return
    finally:
        QUERY_IN_FLIGHT.dec()
    await hub.started(follower, ranked, shown)
