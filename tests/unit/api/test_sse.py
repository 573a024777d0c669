"""The event-stream response at the ASGI level: one write per burst, the
framing, heartbeats while the producer is silent, and a disconnect that
cancels the producer (the wire as a real client sees it is tested in
tests/integration/test_sse.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from api.sse import Event, EventStream


class Wire:
    def __init__(self, disconnect_after_s: float | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.disconnect_after_s = disconnect_after_s

    async def receive(self) -> dict[str, Any]:
        if self.disconnect_after_s is None:
            await asyncio.Event().wait()  # never
        await asyncio.sleep(self.disconnect_after_s or 0)
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]


async def test_each_burst_is_one_write_and_the_stream_ends_cleanly() -> None:
    async def bursts() -> AsyncIterator[list[Event]]:
        yield [Event("meta", {"q": "x"}, 0)]
        yield [Event("hit", {"rank": 1}, 1), Event("hit", {"rank": 2}, 2), Event("done", {}, 3)]

    wire = Wire()
    await EventStream(bursts(), heartbeat_s=5)({}, wire.receive, wire.send)  # type: ignore[arg-type]
    start = wire.sent[0]
    assert start["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in start["headers"]
    assert wire.bodies == [
        b'id: 0\r\nevent: meta\r\ndata: {"q": "x"}\r\n\r\n',
        b'id: 1\r\nevent: hit\r\ndata: {"rank": 1}\r\n\r\n'
        b'id: 2\r\nevent: hit\r\ndata: {"rank": 2}\r\n\r\n'
        b"id: 3\r\nevent: done\r\ndata: {}\r\n\r\n",
    ]
    assert wire.sent[-1]["more_body"] is False


async def test_a_silent_producer_gets_heartbeats_between_its_bursts() -> None:
    async def bursts() -> AsyncIterator[list[Event]]:
        yield [Event("meta", {}, 0)]
        await asyncio.sleep(0.5)
        yield [Event("done", {}, 1)]

    wire = Wire()
    await EventStream(bursts(), heartbeat_s=0.1)({}, wire.receive, wire.send)  # type: ignore[arg-type]
    pings = [b for b in wire.bodies if b.startswith(b": ping")]
    # About five; the bounds only say "some, and not a flood" on a busy machine.
    assert 2 <= len(pings) <= 10, wire.bodies
    assert wire.bodies[-1].startswith(b"id: 1\r\nevent: done")


async def test_a_disconnect_cancels_the_producer_and_ends_the_response() -> None:
    stopped = asyncio.Event()

    async def bursts() -> AsyncIterator[list[Event]]:
        try:
            yield [Event("meta", {}, 0)]
            await asyncio.sleep(30)  # a store that hangs
            yield [Event("done", {}, 1)]
        finally:
            stopped.set()

    wire = Wire(disconnect_after_s=0.05)
    await asyncio.wait_for(
        EventStream(bursts(), heartbeat_s=5)({}, wire.receive, wire.send),  # type: ignore[arg-type]
        timeout=5,
    )
    assert stopped.is_set(), "the producer's finally ran: its work was cancelled"
    assert not any(b"done" in b for b in wire.bodies)


async def test_a_stream_without_its_last_kind_still_ends() -> None:
    async def bursts() -> AsyncIterator[list[Event]]:
        yield [Event("meta", {}, 0)]

    wire = Wire()
    await EventStream(bursts(), heartbeat_s=5)({}, wire.receive, wire.send)  # type: ignore[arg-type]
    assert wire.bodies[-1] == b"" and wire.sent[-1]["more_body"] is False


def test_a_heartbeat_is_no_event_to_an_sse_client() -> None:
    """httpx-sse dispatches a block that holds only a comment as an empty
    `message` once an id was seen; the heartbeat must not end a block."""
    from httpx_sse._decoders import SSEDecoder

    from api.sse import Event, ping

    wire = Event("hit", {"n": 1}, "f1:1").encode() + ping() + ping()
    wire += Event("hit", {"n": 2}, "f1:2").encode() + ping()
    decoder = SSEDecoder()
    lines = wire.decode().split("\r\n")[:-1]  # the text after the last line break is none
    events = [decoder.decode(line) for line in lines]
    assert [(e.event, e.data) for e in events if e is not None] == [
        ("hit", '{"n": 1}'),
        ("hit", '{"n": 2}'),
    ]
