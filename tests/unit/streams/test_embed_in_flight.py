"""The embed stage returns once its output is queued: the consumer keeps the
batch in flight (core/kafka/batches.py) while the model starts on the next."""

from __future__ import annotations

import asyncio

from core.settings import Topics
from schemas.codec import Codecs, codec_for
from streams.deadletter import DeadLetters
from streams.stages import EmbedStage
from tests.fakes import FakeEmbedder, FakeMessage
from tests.profiles import FixedProfile
from tests.unit.streams.test_chunk_batch import HeldProducer

CODECS = Codecs.create()


def chunk(text: str, index: int) -> FakeMessage:
    record = {
        "chunk_id": f"c{index}",
        "doc_id": "d1",
        "version": 1,
        "index": index,
        "chunk_count": 2,
        "text": text,
        "start": 0,
        "end": len(text),
        "occurred_at": 1,
    }
    return FakeMessage(codec_for("ChunkEvent").encode(record), topic="chunks", offset=index)


async def test_the_embedder_returns_its_unacknowledged_output_for_the_consumer_to_await() -> None:
    producer = HeldProducer()
    stage = EmbedStage(
        FixedProfile(embedder=FakeEmbedder()),
        CODECS,
        producer,
        DeadLetters(producer, CODECS.dead_letters),
        Topics(),
    )
    acknowledged = await stage.handle([chunk("alpha", 0), chunk("be", 1)])
    assert acknowledged is not None and len(producer.on("chunks.embedded")) == 2
    waiting = asyncio.ensure_future(acknowledged)
    await asyncio.sleep(0.01)
    assert not waiting.done(), "it completes only with Kafka's acknowledgement"
    producer.release()
    await waiting


async def test_a_batch_with_nothing_to_send_returns_nothing_to_wait_for() -> None:
    producer = HeldProducer()
    stage = EmbedStage(
        FixedProfile(embedder=FakeEmbedder()),
        CODECS,
        producer,
        DeadLetters(producer, CODECS.dead_letters),
        Topics(),
    )
    assert await stage.handle([FakeMessage(b"junk", topic="chunks")]) is None
    assert len(producer.on("chunks.dlq")) == 1
