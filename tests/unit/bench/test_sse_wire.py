"""bench/sse_wire.py against a socket server that answers with canned bytes:
events split across chunks and mid-line, keep-alive, and refused answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from bench.sse_wire import SseConnection, WireError

STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
DONE = json.dumps({"hits": 1, "timings": {"total_ms": 4.2}}).encode()


def chunked(*pieces: bytes) -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)
    return body + b"0\r\n\r\n"


def event_stream(*pieces: bytes) -> bytes:
    return STREAM_HEAD + chunked(*pieces)


@asynccontextmanager
async def server(answer: Callable[[int], bytes]) -> AsyncIterator[tuple[int, list[bytes]]]:
    """Answers the n-th request on a connection with answer(n); records each request."""
    requests: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        n = 0
        while not reader.at_eof():
            try:
                requests.append(await reader.readuntil(b"\r\n\r\n"))
            except asyncio.IncompleteReadError:
                break
            writer.write(answer(n))
            await writer.drain()
            n += 1
        writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    try:
        yield port, requests
    finally:
        listening.close()
        await listening.wait_closed()


async def test_times_first_hit_and_done_and_reads_server_timings() -> None:
    body = event_stream(
        b"id: 0\r\nevent: meta\r\ndata: {}\r\n\r\n",
        b"id: 1\r\nevent: degraded\r\ndata: {}\r\n\r\nid: 2\r\nevent: hi",  # split mid-line
        b"t\r\ndata: {}\r\n\r\n",
        b"id: 3\r\nevent: done\r\ndata: " + DONE + b"\r\n\r\n",
    )
    async with server(lambda n: body) as (port, requests):
        connection = await SseConnection.open("127.0.0.1", port)
        answer = await connection.get("/query?q=x", headers={"X-Correlation-ID": "c-1"})
        await connection.close()
    assert answer.first_hit_ms is not None and answer.done_ms is not None
    assert answer.first_hit_ms <= answer.done_ms
    assert answer.degraded == 1
    assert answer.timings == {"total_ms": 4.2}
    assert requests[0].startswith(b"GET /query?q=x HTTP/1.1\r\n")
    assert b"Accept: text/event-stream" in requests[0] and b"X-Correlation-ID: c-1" in requests[0]


async def test_keeps_the_connection_for_the_next_query() -> None:
    no_hits = event_stream(b"event: done\ndata: " + DONE + b"\n\n")  # LF line ends too
    async with server(lambda n: no_hits) as (port, requests):
        connection = await SseConnection.open("127.0.0.1", port)
        answers = [await connection.get(f"/query?q={n}") for n in range(3)]
        await connection.close()
    assert len(requests) == 3  # one connection, three requests
    assert all(a.first_hit_ms is None and a.done_ms is not None for a in answers)


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/problem+json\r\n"
        b"content-length: 17\r\n\r\n" + b'{"status": 429}  ',
        STREAM_HEAD + chunked(b"event: hit\r\ndata: {}\r\n\r\n"),  # ends without done
    ],
)
async def test_an_answer_that_is_not_a_whole_event_stream_raises(answer: bytes) -> None:
    async with server(lambda n: answer) as (port, _):
        connection = await SseConnection.open("127.0.0.1", port)
        with pytest.raises(WireError):
            await connection.get("/query?q=x")
        await connection.close()
