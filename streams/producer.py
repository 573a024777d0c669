"""Sending from inside the Faust worker, waiting for the broker's acknowledgement.

An input event is acknowledged (and its offset may be committed) only after
everything derived from it is acknowledged by Kafka: at-least-once end to end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
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
        target = self.topic(topic)
        pending = [
            await target.send(key=key, value=value, headers=headers)
            for key, value, headers in messages
        ]
        await asyncio.gather(*pending)
