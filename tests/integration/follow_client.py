"""A follower as a test drives it: an SSE stream read in a thread, its events
collected as they come, so a test can publish while it follows."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import connect_sse


@dataclass
class Seen:
    kind: str
    id: str
    data: Any


@dataclass
class Follow:
    base_url: str
    params: dict[str, Any]
    last_event_id: str = ""
    events: list[Seen] = field(default_factory=list)
    status: int = 0
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _connected: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _response: httpx.Response | None = None

    def start(self) -> Follow:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._connected.wait(60):
            raise AssertionError("the follower never got an answer")
        return self

    def _run(self) -> None:
        headers = {"Last-Event-ID": self.last_event_id} if self.last_event_id else {}
        params = {**self.params, "follow": "true"}
        try:
            with (
                httpx.Client(base_url=self.base_url, timeout=httpx.Timeout(30, read=60)) as client,
                connect_sse(client, "GET", "/query", params=params, headers=headers) as source,
            ):
                self._response = source.response
                self.status = source.response.status_code
                self._connected.set()
                if self.status != 200:
                    return
                for event in source.iter_sse():
                    data = json.loads(event.data) if event.data else None
                    self.events.append(Seen(event.event, event.id, data))
                    if self._stop.is_set():
                        return
        except BaseException as exc:  # kept for the test to see; closing ends here too
            if not self._stop.is_set():
                self.error = exc
        finally:
            self._connected.set()

    def stop(self) -> None:
        """Leave: the connection is closed under the reader."""
        self._stop.set()
        if self._response is not None:
            self._response.close()
        if self._thread is not None:
            self._thread.join(30)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def wait_for(self, what: str, check: Any, timeout_s: float = 120) -> Seen:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for event in list(self.events):
                if check(event):
                    return event
            if self.error is not None:
                raise AssertionError(f"the follower failed: {self.error!r}")
            time.sleep(0.1)
        raise AssertionError(f"no {what} after {timeout_s}s; saw {self.kinds()}")

    def hits_of(self, doc_id: str) -> list[Seen]:
        return [e for e in self.events if e.kind == "hit" and e.data["doc_id"] == doc_id]
