"""Hands the sinks' notices (`chunks.indexed`) to the event loop. Every API
process reads all of them for itself: a `TopicTail` (core/kafka/reading.py),
no consumer group, every partition read from its end at start (a follower
hears of what is written after it started following; the first answer covers
the rest). Here: decoding each notice and handing it over."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from core.kafka.reading import TopicTail
from core.kafka.records import Record
from core.logs import get_logger
from core.notices import IndexedNotice, NoticeError
from core.settings import KafkaSettings

log = get_logger(__name__)


class NoticeConsumer:
    def __init__(self, settings: KafkaSettings, on_notice: Callable[[IndexedNotice], None]) -> None:
        self.topic = settings.topics.chunks_indexed
        self.on_notice = on_notice
        self._tail = TopicTail(settings, self.topic, self._hand_over, name="follow", what="notices")
        self._loop: asyncio.AbstractEventLoop | None = None
        self.received = 0
        self.unreadable = 0

    @property
    def assigned(self) -> threading.Event:
        """Set once the notices are read (every partition assigned from its end)."""
        return self._tail.assigned

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tail.start()

    async def stop(self) -> None:
        await asyncio.to_thread(self._tail.stop)

    def _hand_over(self, record: Record) -> None:
        """On the tail's thread: decode, then hand over to the event loop."""
        try:
            notice = IndexedNotice.decode(record.value or b"")
        except NoticeError as exc:
            self.unreadable += 1
            log.warning("follow: unreadable notice skipped", extra={"error": str(exc)})
            return
        self.received += 1
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.on_notice, notice)
