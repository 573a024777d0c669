"""The batch stages' consumer on each Kafka client stack: the measured reason
for reading with confluent-kafka's `AIOConsumer` (the project's one stack)
rather than aiokafka (which only the Faust app keeps).

One topic is filled with N records of the size of an embedded chunk (a 384-d
float vector and its text, ~2.5 KB). Then each stack reads all of it as the
stages do: batches of up to `--batch` records, a synchronous commit after
each, in one consumer group of its own. Both run in this process, one after
the other and then again in the other order; the figure is each stack's rate
and its CPU per 1,000 records (this process: decoding, the event loop, the
library's threads), from the first record on (joining the group is paid once
per start, and printed apart), the median of the rounds; at the embedder's
batch (64) and a sink's (1,000).

    .venv/bin/python -m bench.kafka_clients                # 100,000 records, 2 rounds
    .venv/bin/python -m bench.kafka_clients --records 20000 --rounds 1

The local stack's Kafka is started if nothing answers at KAFKA_BOOTSTRAP_SERVERS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from bench.pipeline import write_record
from core.kafka.admin import ensure_topics
from core.kafka.bulk import BulkProducer
from core.kafka.config import consumer_config
from core.settings import KafkaSettings, Settings
from tools.stack.local import LocalStack

RECORD_BYTES = 2_500


def fill(kafka: KafkaSettings, topic: str, records: int) -> None:
    ensure_topics(kafka, [topic])
    producer = BulkProducer(kafka, 60.0)
    value = os.urandom(RECORD_BYTES)
    for n in range(records):
        producer.send(topic, value, key=str(n).encode())
    producer.flush(120)


Measured = tuple[float, float, float]  # (join s, records/s after the first, CPU ms per 1,000)


class Clock:
    """From the first record on: a group's join is paid once per start."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first: tuple[float, float] | None = None

    def tick(self) -> None:
        if self.first is None:
            self.first = (time.perf_counter(), time.process_time())

    def result(self, total: int) -> Measured:
        assert self.first is not None
        wall, cpu = time.perf_counter() - self.first[0], time.process_time() - self.first[1]
        return (self.first[0] - self.started, total / wall, cpu / total * 1e6)


async def with_confluent(kafka: KafkaSettings, topic: str, total: int, batch: int) -> Measured:
    from confluent_kafka import TopicPartition
    from confluent_kafka.aio import AIOConsumer

    group = f"bench-confluent-{uuid.uuid4().hex[:8]}"
    clock = Clock()
    consumer = AIOConsumer(
        consumer_config(kafka, group, **{"auto.offset.reset": "earliest"}), max_workers=2
    )
    await consumer.subscribe([topic])
    seen = 0
    try:
        while seen < total:
            messages = await consumer.consume(num_messages=batch, timeout=0.05)
            fetched = [m for m in messages if m.error() is None]
            if not fetched:
                continue
            clock.tick()
            seen += len(fetched)
            ends: dict[tuple[str, int], int] = {}
            for m in fetched:
                _ = (m.value(), m.key(), m.headers())  # what a stage reads of each
                ends[m.topic(), m.partition()] = m.offset() + 1
            offsets = [TopicPartition(t, p, o) for (t, p), o in ends.items()]
            await consumer.commit(offsets=offsets, asynchronous=False)
        return clock.result(seen)
    finally:
        await consumer.close()


async def with_aiokafka(kafka: KafkaSettings, topic: str, total: int, batch: int) -> Measured:
    from aiokafka import AIOKafkaConsumer

    clock = Clock()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka.bootstrap_servers.split(","),
        group_id=f"bench-aiokafka-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    seen = 0
    try:
        while seen < total:
            fetched = await consumer.getmany(timeout_ms=50, max_records=batch)
            if not fetched:
                continue
            clock.tick()
            for records in fetched.values():
                seen += len(records)
                for r in records:
                    _ = (r.value, r.key, r.headers)
            await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in fetched.items()})
        return clock.result(seen)
    finally:
        await consumer.stop()


Reader = Callable[[KafkaSettings, str, int, int], Awaitable[Measured]]
STACKS: dict[str, Reader] = {
    "confluent-kafka (AIOConsumer)": with_confluent,
    "aiokafka": with_aiokafka,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument(
        "--batches", default="64,1000", help="the embedder's and a sink's batch sizes"
    )
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    LocalStack(settings).up(log=True)
    topic = f"bench-clients-{uuid.uuid4().hex[:8]}"
    fill(settings.kafka, topic, args.records)
    print(f"{args.records} records of {RECORD_BYTES} B, a synchronous commit after each batch:")
    figures: dict[str, Any] = {}
    for batch in (int(b) for b in args.batches.split(",")):
        runs: dict[str, list[Measured]] = {name: [] for name in STACKS}
        for round_ in range(args.rounds):
            order = list(STACKS) if round_ % 2 == 0 else list(reversed(STACKS))
            for name in order:
                runs[name].append(
                    asyncio.run(STACKS[name](settings.kafka, topic, args.records, batch))
                )
        figures[str(batch)] = {
            name: [round(statistics.median(r[i] for r in rs), 2) for i in range(3)]
            for name, rs in runs.items()
        }
        base = figures[str(batch)]["aiokafka"]
        for name, (join, rate, cpu) in figures[str(batch)].items():
            print(
                f"  batch {batch:>5}  {name:<30} {rate:>9,.0f} records/s  {cpu:>5.1f} ms CPU "
                f"per 1,000  join {join:.2f} s   (aiokafka: {base[1]:,.0f}/s, {base[2]:.1f} ms)"
            )
    write_record("kafka-clients", {"records": args.records, "figures": figures})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
