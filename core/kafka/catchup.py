"""Reading a topic to its end with a consumer group of one's own: what a
rebuild (`ops/jobs/rebuild.py`) and a replay (`ops/jobs/replay.py`) share.

A `TopicCatchUp` runs a `BatchConsumer` over the topic, remembers how far its
handler got in each partition, and waits until that is the topic's end (or
given end offsets). Offsets are committed after each batch by the consumer, so
a run stopped anywhere resumes where its group left off.

`start_group_at` places a new group at an offset or a time (`core/positions.py`)
before it first reads (`docstream rebuild --from-offset/--from-time`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from core.kafka.admin import admin_client
from core.kafka.batches import BatchConsumer
from core.kafka.offsets import Bounds, Offsets
from core.kafka.records import Record
from core.logs import get_logger
from core.positions import StartAt
from core.settings import KafkaSettings

log = get_logger(__name__)
Records = Sequence[Record]
POLL_S = 0.5


@dataclass(frozen=True)
class Watermarks:
    start: int
    end: int
    committed: int | None


class TopicCatchUp:
    """One topic read through `handle` with group `group` (see the module docstring)."""

    def __init__(
        self,
        name: str,
        kafka: KafkaSettings,
        topic: str,
        group: str,
        handle: Callable[[Records], Awaitable[None]],
        batch: int,
    ) -> None:
        self.name = name
        self.kafka = kafka
        self.topic = topic
        self.group = group
        self._handle = handle
        self.batch = batch
        self._positions: dict[int, int] = {}  # partition → next offset to handle
        self._reading: asyncio.Task[None] | None = None
        self._offsets: Offsets | None = None

    def start(self) -> None:
        consumer = BatchConsumer(
            name=self.name,
            topic=self.topic,
            group_id=self.group,
            kafka=self.kafka,
            handle=self._handled,
            max_records=self.batch,
            within_s=0.2,
        )
        self._reading = asyncio.create_task(consumer.run())

    async def stop(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
            await asyncio.gather(self._reading, return_exceptions=True)

    async def _handled(self, records: Records) -> None:
        await self._handle(records)
        for record in records:
            done = self._positions.get(record.partition, 0)
            self._positions[record.partition] = max(done, record.offset + 1)

    async def end_offsets(self) -> dict[int, int]:
        return {p: m.end for p, m in (await asyncio.to_thread(self.watermarks)).items()}

    async def wait_until_caught_up(
        self, ends: dict[int, int] | None, on_lag: Callable[[int], None]
    ) -> None:
        """Until the handler has finished with `ends` (None: the topic's end at
        each look); the group's own offsets count as done."""
        while True:
            if self._reading is not None and self._reading.done():
                self._reading.result()  # re-raise what stopped the reader
                raise RuntimeError(f"{self.name}: the reader stopped")
            marks = await asyncio.to_thread(self.watermarks)
            current = ends if ends is not None else {p: m.end for p, m in marks.items()}
            lag = 0
            for partition, end in current.items():
                mark = marks[partition]
                done = self._positions.get(partition, mark.committed or mark.start)
                lag += max(0, end - max(done, mark.start))
            on_lag(lag)
            if lag == 0:
                return
            await asyncio.sleep(POLL_S)

    def watermarks(self) -> dict[int, Watermarks]:
        """Per partition: first and next offset, and what the group has committed."""
        bounds = self._bounds()
        committed = self.offsets.committed(self.group, self.topic, bounds)
        return {p: Watermarks(first, end, committed.get(p)) for p, (first, end) in bounds.items()}

    @property
    def offsets(self) -> Offsets:
        """Made at first use: one admin client for the job's every look."""
        if self._offsets is None:
            self._offsets = Offsets(self.kafka)
        return self._offsets

    def _bounds(self) -> Bounds:
        bounds = self.offsets.bounds([self.topic]).get(self.topic)
        if not bounds:
            raise RuntimeError(f"topic {self.topic} has no partitions yet")
        return bounds

    def forget(self) -> None:
        """Delete the group's committed offsets once the job is done (its reader
        stopped): the next job of the same name starts afresh, and no finished
        group is left for status to list."""
        admin = admin_client(self.kafka)
        for group, future in admin.delete_consumer_groups([self.group]).items():
            try:
                future.result(timeout=30)
            except Exception as exc:  # left behind, harmless: say so and go on
                log.warning(
                    "consumer group not deleted", extra={"group": group, "error": repr(exc)}
                )

    def start_group_at(self, start: StartAt) -> dict[int, int]:
        """Commit `start` as the group's position, unless it has read already
        (then it resumes). Returns the group's starting offsets."""
        bounds = self._bounds()
        committed = self.offsets.committed(self.group, self.topic, bounds)
        if committed:
            # A partition it never committed starts at its first offset.
            return {p: committed.get(p, first) for p, (first, _) in bounds.items()}
        wanted = _resolve(self.offsets, self.topic, bounds, start)
        self.offsets.commit(self.group, self.topic, wanted)
        return wanted


def _resolve(offsets: Offsets, topic: str, bounds: Bounds, start: StartAt) -> dict[int, int]:
    """Offsets within each partition's range for `start`."""
    wanted: dict[int, int | None]
    if start.time is not None:
        stamp = int(start.time.timestamp() * 1000)
        # None: no event at or after the time in that partition: start at its end.
        wanted = dict(offsets.at_time(topic, bounds, stamp))
    else:
        given = start.offsets or {}
        unknown = set(given) - set(bounds)
        if unknown:
            raise ValueError(f"the topic has no partition {sorted(unknown)}")
        wanted = {p: given.get(p, start.offset if start.offset is not None else 0) for p in bounds}
    return {
        p: bounds[p][1] if o is None or o < 0 else min(max(o, bounds[p][0]), bounds[p][1])
        for p, o in wanted.items()
    }
