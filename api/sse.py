"""A lean `text/event-stream` response: bursts of events, heartbeats, and the
stream cancelled when the client goes away.

Why not sse-starlette: a query's events come in two or three bursts (the
fused hits, the graph's, `done`), and each burst goes out in one write here;
an anyio task group with four tasks per response and one write per event cost
about a third of the API's CPU per query under load (bench/query.py).

    stream = EventStream(bursts, heartbeat_s=15)   # bursts: AsyncIterator[list[Event]]

The burst that ends with a `last_kind` event ("done") also ends the response,
in the same write. While the producer of bursts is silent for `heartbeat_s`, a comment line
(`: ping`) keeps proxies from closing the idle stream. A disconnect cancels
the producer (its `finally` blocks run) and ends the response.
"""

from __future__ import annotations

import asyncio
import json
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),  # nginx: pass each burst on at once
]


@dataclass(frozen=True)
class Event:
    kind: str
    data: Mapping[str, Any]
    id: int | str  # "<stream>:<seq>" (api/follow/follower.py)

    def encode(self) -> bytes:
        data = json.dumps(self.data)
        return f"id: {self.id}\r\nevent: {self.kind}\r\ndata: {data}\r\n\r\n".encode()


def ping() -> bytes:
    # A comment line and no blank line after it: a blank line ends an event
    # block, and a block holding only a comment is dispatched by some clients
    # (httpx-sse, once an id was seen) as an empty `message` event. The
    # comment is ignored inside the next event's block instead.
    return f": ping - {datetime.now(UTC).isoformat()}\r\n".encode()


class EventStream(Response):
    """An ASGI response (see the module docstring)."""

    def __init__(
        self,
        bursts: AsyncIterator[list[Event]],
        heartbeat_s: float,
        last_kind: str = "done",
        retry_ms: int | None = None,
    ) -> None:
        # Not Response.__init__: there is no body to render, only a stream.
        self.bursts = bursts
        self.heartbeat_s = heartbeat_s
        self.last_kind = last_kind  # the kind of event that ends a stream
        # Sent first: how long an EventSource waits before it reconnects.
        self.retry_ms = retry_ms
        self.status_code = 200
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        loop = asyncio.get_running_loop()
        last_write = loop.time()
        ended = False

        # A field of the first event, not a block of its own: a block without
        # data is no event to a browser, but some clients report it as one.
        first = b"" if self.retry_ms is None else f"retry: {self.retry_ms}\r\n".encode()

        async def pump() -> None:
            nonlocal last_write, ended, first
            async for burst in self.bursts:
                if not burst:
                    continue
                body = first + b"".join(event.encode() for event in burst)
                first = b""
                # The last event ends the response in the same write.
                ended = bool(burst) and burst[-1].kind == self.last_kind
                await send({"type": "http.response.body", "body": body, "more_body": not ended})
                last_write = loop.time()

        pumping = asyncio.ensure_future(pump())
        listening: asyncio.Future[Message] | None = None
        try:
            while not pumping.done():
                listening = listening or asyncio.ensure_future(receive())
                idle = self.heartbeat_s - (loop.time() - last_write)
                waiting: set[asyncio.Future[Any]] = {pumping, listening}
                await asyncio.wait(waiting, timeout=max(idle, 0), return_when=FIRST_COMPLETED)
                if listening.done():
                    if listening.result()["type"] == "http.disconnect":
                        pumping.cancel()
                        await asyncio.gather(pumping, return_exceptions=True)
                        return
                    listening = None  # a stray body chunk: keep listening
                elif not pumping.done() and loop.time() - last_write >= self.heartbeat_s:
                    await send({"type": "http.response.body", "body": ping(), "more_body": True})
                    last_write = loop.time()
        finally:
            if listening is not None:
                listening.cancel()
            if not pumping.done():  # we were cancelled ourselves
                pumping.cancel()
                await asyncio.gather(pumping, return_exceptions=True)
        pumping.result()  # a failure of the producer is the server's error
        if not ended:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
