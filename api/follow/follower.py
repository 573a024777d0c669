"""One follower: its query, what its client was shown, its event ids, the
events kept for a reconnect, and the events not yet sent.

Event ids are `<stream>:<seq>`: the stream names this follower (it starts with
`f`; a one-shot answer's starts with `q`), the sequence counts its events.
A reconnect with `Last-Event-ID: <stream>:<n>` resumes after event n as long
as the follower is kept (`follow_resume_s` after its client left) and its
replay buffer still holds event n+1.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from api.search import Query
from api.sse import Event


def new_stream(kind: str) -> str:
    """`f…` for a follower, `q…` for a one-shot answer."""
    return kind + secrets.token_hex(8)


def parse_event_id(value: str) -> tuple[str, int] | None:
    stream, _, seq = value.strip().rpartition(":")
    if not stream or not seq.isdigit():
        return None
    return stream, int(seq)


@dataclass
class Thresholds:
    """The score a new chunk must reach, per retriever: the k-th of the first
    answer's (None: that answer had fewer than k, so any match ranks within k),
    or `min_score` against the mode's main score when the query set one."""

    per_retriever: dict[str, float | None] = field(default_factory=dict)
    min_score: float | None = None
    main: str = "dense"  # the retriever min_score applies to

    def admits(self, retriever: str, score: float) -> bool:
        if self.min_score is not None:
            return retriever == self.main and score >= self.min_score
        if retriever not in self.per_retriever:
            return False
        bar = self.per_retriever[retriever]
        return bar is None or score >= bar


@dataclass
class Pending:
    events: list[Event]
    written_at: float | None  # when the last sink wrote what they tell of


class Follower:
    def __init__(self, query: Query, replay_events: int, queue_events: int) -> None:
        self.query = query
        self.stream = new_stream("f")
        self.seq = 0
        self.thresholds = Thresholds()
        self.shown: dict[str, str] = {}  # chunk id → doc id, as the client sees it
        self.ready = False  # its first answer was given: notices now apply
        self.backlog: list[Any] = []  # ready docs heard of before that
        self.replay: deque[tuple[int, Event]] = deque(maxlen=replay_events)
        self.queue_events = queue_events
        self.pending: deque[Pending] = deque()
        self.queued = 0
        self.wake = asyncio.Event()
        self.dropped = False
        # A bug of ours ended it: the data of its last event, `error`.
        self.error: dict[str, str] | None = None
        # The request its client is connected with (or was, last): what the
        # logs and an `error` event name it by.
        self.correlation_id = ""
        self.connection = 0  # bumped by each (re)connect: an older stream ends
        self.left_at: float | None = None  # when its client went away

    @property
    def ended(self) -> bool:
        """Nothing more is matched or kept for it: it was dropped, or failed."""
        return self.dropped or self.error is not None

    def fail(self, error: dict[str, str]) -> None:
        """End it with an `error` event: after a bug its events (and what it
        was shown) can no longer be trusted, so what is queued goes too."""
        self.error = self.error or error
        self.pending.clear()
        self.queued = 0
        self.wake.set()

    def event(self, kind: str, data: Mapping[str, Any]) -> Event:
        """The next event of this stream, kept for a reconnect."""
        self.seq += 1
        event = Event(kind, data, f"{self.stream}:{self.seq}")
        self.replay.append((self.seq, event))
        return event

    def push(self, events: list[Event], written_at: float | None) -> None:
        """Queue events for the client; one that stops reading is dropped
        rather than buffered without end."""
        if not events or self.ended:
            return
        self.queued += len(events)
        if self.queued > self.queue_events:
            self.dropped = True
            self.pending.clear()
        else:
            self.pending.append(Pending(events, written_at))
        self.wake.set()

    def take(self) -> list[Pending]:
        taken = list(self.pending)
        self.pending.clear()
        self.queued = 0
        return taken

    def since(self, seq: int) -> list[Event] | None:
        """The kept events after `seq`, or None when some are no longer kept."""
        if seq == self.seq:
            return []
        if not self.replay or seq < self.replay[0][0] - 1 or seq > self.seq:
            return None
        return [e for n, e in self.replay if n > seq]
