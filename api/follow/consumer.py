"""Reads the sinks' notices (`chunks.indexed`) in a thread and hands each to
the event loop. Every API process reads all of them for itself: no consumer
group, every partition assigned from its end at start (a follower hears of
what is written after it started following; the first answer covers the rest).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, TopicPartition

from core.kafka.admin import ensure_topics
from core.logs import get_logger
from core.notices import IndexedNotice, NoticeError
from core.settings import KafkaSettings

log = get_logger(__name__)
POLL_S = 0.2


class NoticeConsumer:
    def __init__(self, settings: KafkaSettings, on_notice: Callable[[IndexedNotice], None]) -> None:
        self.settings = settings
        self.topic = settings.topics.chunks_indexed
        self.on_notice = on_notice
        self.assigned = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.received = 0
        self.unreadable = 0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="follow-notices", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)

    def _consumer(self) -> Consumer:
        # The topic may not exist yet (an API process started before the worker).
        ensure_topics(self.settings, [self.topic])
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.bootstrap_servers,
                "group.id": "docstream-follow",  # required; never joined (assign, no commits)
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 20,  # a notice is waited for by people
                "log_level": 0,
            }
        )
        partitions = consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions
        ends = []
        for partition in partitions:
            _, high = consumer.get_watermark_offsets(
                TopicPartition(self.topic, partition), timeout=10
            )
            ends.append(TopicPartition(self.topic, partition, high))
        consumer.assign(ends)
        return consumer

    def _run(self) -> None:
        consumer = None
        while consumer is None and not self._stop.is_set():
            try:
                consumer = self._consumer()
            except Exception as exc:  # Kafka not there yet: followers wait for it
                log.warning("follow: notices not readable yet", extra={"error": repr(exc)})
                self._stop.wait(2)
        if consumer is None:
            return
        self.assigned.set()
        log.info("follow: reading notices", extra={"topic": self.topic})
        try:
            while not self._stop.is_set():
                message = consumer.poll(POLL_S)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("follow: notice error", extra={"error": str(error)})
                    continue
                self._hand_over(message.value())
        finally:
            consumer.close()

    def _hand_over(self, raw: bytes | None) -> None:
        try:
            notice = IndexedNotice.decode(raw or b"")
        except NoticeError as exc:
            self.unreadable += 1
            log.warning("follow: unreadable notice skipped", extra={"error": str(exc)})
            return
        self.received += 1
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.on_notice, notice)
