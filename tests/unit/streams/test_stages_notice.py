"""A sink stage tells what it wrote, once the write succeeded: one notice per
batch on the notices topic, naming only what the store holds now."""

import pytest

from core.notices import IndexedNotice
from streams.stages import SinkStage
from tests.fakes import FakeProducer, FakeStore
from tests.unit.streams.test_stages import CODECS, dead_letters, embedded_message


async def test_a_written_batch_sends_one_notice_of_what_the_store_now_holds() -> None:
    letters, notices, store = FakeProducer(), FakeProducer(), FakeStore()
    stage = SinkStage(
        store,
        CODECS,
        dead_letters(letters),
        name="qdrant-sink",
        notices=notices,
        notice_topic="p.chunks.indexed",
    )
    await stage.handle(
        [embedded_message("good", 0), embedded_message("poison", 1), embedded_message("fine", 2)]
    )
    [(topic, key, value, _)] = notices.sent
    assert topic == "p.chunks.indexed" and key is None
    notice = IndexedNotice.decode(value)
    assert notice.sink == "qdrant-sink"
    [doc] = notice.docs
    # The refused chunk was dead-lettered, not written: the notice leaves it out.
    assert sorted(doc.chunks) == sorted(c.chunk_id for c in store.written)
    assert len(doc.chunks) == 2 and not doc.deleted and doc.correlation_id == "corr-42"


class Broken(FakeStore):
    async def write(self, plan: object) -> None:
        raise RuntimeError("a bug in the store adapter")


async def test_a_write_that_fails_sends_no_notice() -> None:
    notices = FakeProducer()
    stage = SinkStage(Broken(), CODECS, dead_letters(FakeProducer()), "neo4j-sink", notices=notices)
    with pytest.raises(RuntimeError):
        await stage.handle([embedded_message("good", 0)])
    assert notices.sent == []
