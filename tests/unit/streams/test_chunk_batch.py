"""The chunker's batches: one wait for Kafka's acknowledgement per batch, and
only then each document's state (in its own partition) and its event's ack."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from core.settings import Topics
from schemas.codec import Codecs, codec_for
from streams.app import DocumentStates
from streams.chunk_stage import ChunkStage
from streams.deadletter import DeadLetters
from streams.records import chunk_events
from streams.state import DocumentState, save
from tests.fakes import FakeMessage, FakeProducer
from tests.profiles import FixedProfile

CODECS = Codecs.create()
Sent = tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]


@dataclass
class HeldProducer(FakeProducer):
    """Queues what `send_soon` is given and holds its acknowledgement until the
    test releases (or fails) it; dead letters (`send`) are acknowledged at once."""

    held: list[asyncio.Future[None]] = field(default_factory=list)

    async def send_soon(
        self, topic: str, messages: Sequence[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]
    ) -> Awaitable[None]:
        for key, value, headers in messages:
            self.sent.append((topic, key, value, headers))
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.held.append(ack)
        return ack

    def release(self, error: BaseException | None = None) -> None:
        for ack in self.held:
            if error is None:
                ack.set_result(None)
            else:
                ack.set_exception(error)


class PartitionRows(dict[str, Any]):
    """A table that records the partition each row was written with."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[str, int]] = []

    def write(self, doc_id: str, value: dict[str, Any], partition: int) -> None:
        self.writes.append((doc_id, partition))
        self[doc_id] = value


def document(doc_id: str, version: int = 1, text: str = "One two. Three four.") -> bytes:
    record = {"doc_id": doc_id, "version": version, "text": text, "occurred_at": 1}
    return codec_for("DocumentEvent").encode(record)


def message(value: bytes, key: str, offset: int, partition: int = 0) -> FakeMessage:
    return FakeMessage(value, key=key.encode(), offset=offset, partition=partition)


def stage(producer: FakeProducer, states: dict[str, Any]) -> ChunkStage:
    letters = DeadLetters(producer, CODECS.dead_letters)
    return ChunkStage(FixedProfile(), CODECS, producer, letters, Topics(), states)


class Acks:
    def __init__(self) -> None:
        self.acked: list[int] = []

    async def __call__(self, index: int) -> None:
        self.acked.append(index)


def chunk_docs(producer: FakeProducer) -> list[tuple[str, int]]:
    records = [codec_for("ChunkEvent").decode(value) for _, _, value, _ in producer.on("chunks")]
    return [(r["doc_id"], r["version"]) for r in records]


async def test_states_are_written_only_after_every_chunk_of_the_batch_is_acknowledged() -> None:
    producer, states, acks = HeldProducer(), dict[str, Any](), Acks()
    batch = [message(document("a"), "a", 0), message(document("b"), "b", 1)]
    work = asyncio.ensure_future(stage(producer, states).handle_batch(batch, acks))
    await asyncio.sleep(0.01)
    assert {doc for doc, _ in chunk_docs(producer)} == {"a", "b"}, "both queued, no wait between"
    assert not work.done() and states == {} and acks.acked == []
    producer.release()
    await work
    assert states["a"]["status"] == states["b"]["status"] == "chunked"
    assert acks.acked == [0, 1]


async def test_an_acknowledgement_that_fails_writes_no_state_and_acknowledges_nothing() -> None:
    producer, states, acks = HeldProducer(), dict[str, Any](), Acks()
    batch = [message(document("a"), "a", 0), message(document("b"), "b", 1)]
    work = asyncio.ensure_future(stage(producer, states).handle_batch(batch, acks))
    await asyncio.sleep(0.01)
    producer.release(ConnectionError("the broker never answered"))
    with pytest.raises(ConnectionError):
        await work
    assert states == {} and acks.acked == []


async def test_a_batch_stopped_while_it_waits_leaves_every_event_to_be_read_again() -> None:
    producer, states, acks = HeldProducer(), dict[str, Any](), Acks()
    work = asyncio.ensure_future(
        stage(producer, states).handle_batch([message(document("a"), "a", 0)], acks)
    )
    await asyncio.sleep(0.01)
    work.cancel()
    with pytest.raises(asyncio.CancelledError):
        await work
    assert states == {} and acks.acked == []


async def test_versions_of_one_document_in_a_batch_are_decided_in_order() -> None:
    producer, states, acks = FakeProducer(), dict[str, Any](), Acks()
    batch = [
        message(document("a", 1), "a", 0),
        message(document("a", 3, "Five six. Seven eight."), "a", 1),
        message(document("a", 2, "Older text."), "a", 2),  # older than what the batch holds
        message(document("a", 4, "Five six. Seven eight."), "a", 3),  # same content, newer
    ]
    await stage(producer, states).handle_batch(batch, acks)
    assert chunk_docs(producer) == [("a", 1), ("a", 1), ("a", 3), ("a", 3)]
    assert states["a"]["version"] == 4 and states["a"]["status"] == "unchanged"
    assert states["a"]["indexed_version"] == 3
    assert acks.acked == [0, 1, 2, 3]


async def test_a_poison_event_in_a_batch_is_dead_lettered_and_the_others_proceed() -> None:
    producer, states, acks = FakeProducer(), dict[str, Any](), Acks()
    batch = [
        message(document("a"), "a", 0),
        message(b"not avro", "p", 1),
        message(document("e", text="   "), "e", 2),
        message(document("b"), "b", 3),
    ]
    await stage(producer, states).handle_batch(batch, acks)
    letters = [codec_for("DeadLetter").decode(v) for _, _, v, _ in producer.on("documents.dlq")]
    assert [(letter["offset"], letter["value"]) for letter in letters] == [
        (1, b"not avro"),
        (2, document("e", text="   ")),
    ]
    assert {doc for doc, _ in chunk_docs(producer)} == {"a", "b"}
    assert states["p"]["status"] == states["e"]["status"] == "dead_lettered"
    assert states["a"]["status"] == states["b"]["status"] == "chunked"
    assert acks.acked == [0, 1, 2, 3]


async def test_a_bug_finishes_the_documents_before_it_and_leaves_the_rest_unconsumed(
    monkeypatch: Any,
) -> None:
    def buggy(doc: Any, chunks: Any) -> Any:
        if doc.doc_id == "bug":
            raise AttributeError("'NoneType' object has no attribute 'text'")
        return chunk_events(doc, chunks)

    monkeypatch.setattr("streams.chunk_stage.chunk_events", buggy)
    producer, states, acks = HeldProducer(), dict[str, Any](), Acks()
    batch = [message(document(d), d, i) for i, d in enumerate(["a", "bug", "c"])]
    work = asyncio.ensure_future(stage(producer, states).handle_batch(batch, acks))
    await asyncio.sleep(0.01)
    producer.release()
    with pytest.raises(AttributeError):
        await work
    assert list(states) == ["a"] and acks.acked == [0]
    assert set(chunk_docs(producer)) == {("a", 1)}, "nothing after the bug was sent"


async def test_each_state_is_written_in_its_own_events_partition() -> None:
    producer, rows = FakeProducer(), PartitionRows()
    batch = [
        message(document("a"), "a", 0, partition=2),
        message(b"junk", "p", 0, partition=0),
        message(document("b"), "b", 5, partition=1),
    ]
    await stage(producer, rows).handle_batch(batch)
    assert rows.writes == [("a", 2), ("p", 0), ("b", 1)]


class FaustLikeTable(dict[str, Any]):
    """What DocumentStates uses of a Faust table: `send_changelog` and `data`."""

    def __init__(self) -> None:
        super().__init__()
        self.changelog: list[tuple[int | None, str, Any]] = []

    def send_changelog(self, partition: int | None, key: str, value: Any) -> None:
        self.changelog.append((partition, key, value))

    @property
    def data(self) -> dict[str, Any]:
        return self


def test_the_worker_table_sends_each_row_to_the_partition_it_is_given() -> None:
    table = FaustLikeTable()
    states = DocumentStates(table)
    for doc_id, partition in (("a", 3), ("b", 0)):
        save(states, doc_id, DocumentState(1, doc_id, 1, "chunked"), partition)
    assert [(p, k) for p, k, _ in table.changelog] == [(3, "a"), (0, "b")]
    assert states.get("a") == table["a"] and states.get("zz") is None
    assert sorted(states) == ["a", "b"] and len(states) == 2
