"""A lean SSE client for the latency benchmark: one keep-alive HTTP/1.1
connection, a GET, the chunked body parsed into events as the bytes arrive.

Why not httpx here: on this 2-core machine httpx spent about 5 ms of CPU per
streamed answer, on the same cores as the server it was timing, so its own
work showed up in every latency it reported (bench/query.py --client httpx
keeps it for comparison). This client reads with asyncio streams and scans for
the `event:` lines it times, and nothing more.

    connection = await SseConnection.open("127.0.0.1", 8000)
    answer = await connection.get("/query?q=...&k=10")   # an Answer
    await connection.close()

It speaks only what the API answers with: `200` with `Transfer-Encoding:
chunked` and `text/event-stream`. Any other answer raises `WireError` with the
status and the start of the body; the connection is then closed, as the body
of an error may not have been read to its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field


class WireError(Exception):
    """The server answered something other than a chunked event stream."""


@dataclass
class Answer:
    """One streamed answer: when its first `hit` and its `done` arrived (ms after
    the request was written), how many `degraded` events it had, and the
    server's own timings from `done`."""

    first_hit_ms: float | None = None
    done_ms: float | None = None
    degraded: int = 0
    timings: dict[str, float] = field(default_factory=dict)


class EventTimer:
    """Incremental SSE parsing (lines, `event:`/`data:` fields, a blank line
    ends an event) that stamps the events the benchmark times. Fed the body's
    bytes by either client: this socket reader, or httpx in bench/query_clients.py."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.answer = Answer()
        self._pending = b""
        self._kind = "message"
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> None:
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        for line in lines:
            self._line(line.rstrip(b"\r"))

    def _line(self, line: bytes) -> None:
        if not line:
            self._dispatch()
        elif line.startswith(b"event:"):
            self._kind = line[6:].strip().decode()
        elif line.startswith(b"data:"):
            self._data.append(line[5:].removeprefix(b" "))

    def _dispatch(self) -> None:
        kind, data = self._kind, b"\n".join(self._data)
        self._kind, self._data = "message", []
        elapsed = (time.perf_counter() - self.started) * 1000
        if kind == "hit" and self.answer.first_hit_ms is None:
            self.answer.first_hit_ms = elapsed
        elif kind == "degraded":
            self.answer.degraded += 1
        elif kind == "done":
            self.answer.done_ms = elapsed
            self.answer.timings = json.loads(data).get("timings", {})


class SseConnection:
    def __init__(
        self, host: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.host = host
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> SseConnection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(host, reader, writer)

    async def get(self, target: str, headers: dict[str, str] | None = None) -> Answer:
        lines = [f"GET {target} HTTP/1.1", f"Host: {self.host}", "Accept: text/event-stream"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        started = time.perf_counter()
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = await self._head()
        events = EventTimer(started)
        while size := await self._chunk_size():
            events.feed(await self.reader.readexactly(size))
            await self.reader.readexactly(2)  # the CRLF after each chunk
        await self.reader.readuntil(b"\r\n")  # the blank line after the last chunk
        if events.answer.done_ms is None:
            raise WireError(f"the stream ended without `done` ({head.splitlines()[0]})")
        return events.answer

    async def _head(self) -> str:
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, *header_lines = head.strip().split("\r\n")
        headers = dict(_header(line) for line in header_lines)
        if (
            status_line.split(" ")[1:2] != ["200"]
            or headers.get("transfer-encoding") != "chunked"
            or not headers.get("content-type", "").startswith("text/event-stream")
        ):
            body = await self._some_body(headers)
            await self.close()
            raise WireError(f"{status_line}: {body[:200]!r}")
        return head

    async def _some_body(self, headers: dict[str, str]) -> bytes:
        length = int(headers.get("content-length", "0") or 0)
        try:
            return await asyncio.wait_for(self.reader.read(min(length, 4096) or 4096), 1.0)
        except TimeoutError:
            return b""

    async def _chunk_size(self) -> int:
        line = await self.reader.readuntil(b"\r\n")
        return int(line.split(b";")[0].strip(), 16)  # a chunk extension is ignored

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):  # the server may have gone first
            await self.writer.wait_closed()


def _header(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name.strip().lower(), value.strip().lower()
