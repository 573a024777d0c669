"""Sending from inside the Faust worker: waiting for the broker's acknowledgement
(`send_many`), or queueing now and waiting for it later (`send_soon`).

An input event is acknowledged (and its offset may be committed) only after
everything derived from it is acknowledged by Kafka: at-least-once end to end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any

import faust


class FaustProducer:
    def __init__(self, app: faust.App) -> None:
        self.app = app
        self._topics: dict[str, Any] = {}

    def topic(self, name: str) -> Any:
        if name not in self._topics:
            self._topics[name] = self.app.topic(
                name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
            )
        return self._topics[name]

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        await self.send_many(topic, [(key, value, headers)])

    async def send_many(
        self, topic: str, messages: Sequence[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]
    ) -> None:
        await (await self.send_soon(topic, messages))

    async def send_soon(
        self, topic: str, messages: Sequence[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]
    ) -> Awaitable[None]:
        """Queue the messages in order; the result completes once Kafka acknowledged all.

        aiokafka keeps one batch in flight per partition, so what is queued here
        reaches each partition in the order it was queued, retries included."""
        target = self.topic(topic)
        pending = [
            await target.send(key=key, value=value, headers=headers)
            for key, value, headers in messages
        ]
        return asyncio.ensure_future(_all_acknowledged(pending))


async def _all_acknowledged(pending: Sequence[Awaitable[Any]]) -> None:
    await asyncio.gather(*pending)
