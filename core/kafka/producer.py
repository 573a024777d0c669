"""An asyncio face on confluent-kafka's producer, for the HTTP intake.

`send_all` returns only when Kafka acknowledged every event, and raises
`KafkaUnavailable` if any was not acknowledged within the delivery timeout."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from core.kafka.config import DELIVERY_TIMEOUT_S, producer_config
from core.kafka.errors import KafkaUnavailable
from core.settings import KafkaSettings

Headers = list[tuple[str, str | bytes | None]]


class AsyncProducer:
    def __init__(
        self, kafka: KafkaSettings, delivery_timeout_s: float = DELIVERY_TIMEOUT_S
    ) -> None:
        self.delivery_timeout_s = delivery_timeout_s
        # The default (short) linger: an HTTP caller waits on every request.
        self._producer = Producer(
            producer_config(
                kafka,
                max_message_bytes=kafka.max_message_bytes,
                delivery_timeout_s=delivery_timeout_s,
            )
        )
        self._stop = threading.Event()
        # Delivery callbacks run in poll(); a thread keeps polling so they fire.
        self._poller = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    async def send_all(self, topic: str, messages: Sequence[tuple[bytes, bytes, Headers]]) -> None:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = []
        for key, value, headers in messages:
            future: asyncio.Future[None] = loop.create_future()
            futures.append(future)
            try:
                self._producer.produce(
                    topic,
                    key=key,
                    value=value,
                    headers=headers,
                    on_delivery=_resolver(loop, future),
                )
            except (BufferError, KafkaException) as exc:
                future.set_exception(KafkaUnavailable(f"cannot queue the event: {exc}"))
        try:
            await asyncio.wait_for(asyncio.gather(*futures), self.delivery_timeout_s + 1)
        except TimeoutError as exc:
            raise KafkaUnavailable("Kafka did not acknowledge in time") from exc

    def close(self) -> None:
        self._stop.set()
        self._poller.join(timeout=2)
        self._producer.flush(2)


def _resolver(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> Any:
    def settle(error: KafkaError | None, _message: Message) -> None:
        if error is None:
            loop.call_soon_threadsafe(_set_result, future)
        else:
            failure = KafkaUnavailable(f"not acknowledged: {error.str()}")
            loop.call_soon_threadsafe(_set_exception, future, failure)

    return settle


def _set_result(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _set_exception(future: asyncio.Future[None], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
