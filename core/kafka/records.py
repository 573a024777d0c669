"""A consumed Kafka record as docstream's stages see it, whichever client read
it: the same attributes as a Faust event's message, so a stage handles both."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]
    timestamp: int  # milliseconds since the epoch, as the producer or broker stamped it

    @classmethod
    def of(cls, message: Any) -> Record:
        """From a confluent-kafka `Message` that carries no error."""
        _kind, stamp = message.timestamp()
        return cls(
            topic=message.topic(),
            partition=message.partition(),
            offset=message.offset(),
            key=message.key(),
            value=message.value(),
            headers=tuple(message.headers() or ()),
            timestamp=stamp,
        )
