"""Dead-letter operations without Kafka: references, grouping, the redrive plan
(count limit, ledger, one redrive per event and run) and the headers that carry
the count through a stage that fails again."""

import logging
from typing import Any

import pytest

from core.correlation import CORRELATION_HEADER, TRACEPARENT_HEADER
from core.kafka.records import Record
from core.settings import ChunkerSettings, Topics
from ops.dlq.letters import (
    REDRIVE_OF_HEADER,
    REDRIVES_HEADER,
    DeadLetter,
    Outcome,
    Ref,
    dead_letter,
    describe_payload,
    group,
    matches,
    parse_ref,
    plan_redrive,
    redrive_headers,
    report,
    summary,
)
from schemas.codec import Codecs, codec_for
from streams.chunker import SentenceChunker
from streams.deadletter import DeadLetters
from streams.embedding.tokens import WordCounter
from streams.stages import ChunkStage
from tests.fakes import FakeMessage, FakeProducer
from tests.profiles import FixedProfile

CODECS = Codecs.create()
HEADERS = [(CORRELATION_HEADER, b"corr-7"), (TRACEPARENT_HEADER, b"00-aa-bb-01")]


def document(text: str = "Some text.", doc_id: str = "d1") -> bytes:
    record = {"doc_id": doc_id, "version": 1, "text": text, "occurred_at": 1}
    return codec_for("DocumentEvent").encode(record)


async def fail_in_chunker(message: FakeMessage) -> tuple[bytes, list[tuple[str, bytes]]]:
    """What the real chunker writes to documents.dlq for a message it cannot take."""
    producer = FakeProducer()
    chunker = SentenceChunker(ChunkerSettings(max_tokens=8, overlap_tokens=0), WordCounter())
    dead_letters = DeadLetters(producer, CODECS.dead_letters)
    stage = ChunkStage(FixedProfile(chunker), CODECS, producer, dead_letters, Topics(), {})  # type: ignore[arg-type]
    await stage.handle(message)
    [(topic, _, value, headers)] = producer.sent
    assert topic == "documents.dlq"
    return value, headers


def consumed(value: bytes, headers: Any, partition: int = 0, offset: int = 0) -> DeadLetter:
    record = Record(
        topic="documents.dlq",
        partition=partition,
        offset=offset,
        key=None,
        value=value,
        headers=headers,
        timestamp=1_700_000_000_000,
    )
    return dead_letter("documents", "documents.dlq", record, CODECS.dead_letters)


def redriven(letter: DeadLetter, offset: int = 20) -> FakeMessage:
    """The event `dlq redrive` sends back: original bytes, headers with the count."""
    assert letter.record is not None
    return FakeMessage(letter.record["value"], headers=redrive_headers(letter), offset=offset)


async def poison(offset: int = 0, source_offset: int = 3, partition: int = 0) -> DeadLetter:
    """A document with empty text: the chunker dead-letters it every time."""
    message = FakeMessage(document(text="   "), headers=HEADERS, offset=source_offset)
    value, headers = await fail_in_chunker(message)
    return consumed(value, headers, partition=partition, offset=offset)


def test_references_name_an_offset_a_partition_and_a_source() -> None:
    assert parse_ref("12") == Ref(12)
    assert parse_ref("2:12") == Ref(12, partition=2)
    assert parse_ref("chunks.embedded:1:5") == Ref(5, partition=1, source="chunks.embedded")
    assert parse_ref("documents.dlq:0:7") == Ref(7, partition=0, source="documents")
    for bad in ("x", "-1", "1:-2", "nowhere:1:2", "1:2:3:4", ""):
        with pytest.raises(ValueError):
            parse_ref(bad)


async def test_a_dead_letter_reads_back_with_stage_reason_origin_and_correlation() -> None:
    letter = await poison(offset=4, source_offset=9)
    assert letter.ref == "documents:0:4"
    assert letter.stage == "chunker"
    assert letter.reason.startswith("InvalidEvent: text is empty")
    assert letter.origin == ("documents", 0, 9)
    assert letter.correlation_id == "corr-7"
    assert letter.redrives == 0
    assert letter.headers["dlq_stage"] == b"chunker"


def test_bytes_that_are_no_dead_letter_are_kept_as_unreadable() -> None:
    letter = consumed(b"garbage", [("dlq_stage", b"embedder")])
    assert letter.record is None and letter.stage == "embedder"
    assert letter.reason.startswith("unreadable dead letter")
    [step] = plan_redrive([letter])
    assert step.action == "skip"


async def test_a_redriven_event_that_fails_again_comes_back_with_its_count() -> None:
    first = await poison()
    headers = dict(redrive_headers(first))
    assert headers[REDRIVES_HEADER] == b"1"
    assert headers[REDRIVE_OF_HEADER] == b"documents.dlq:0:0"
    assert headers[CORRELATION_HEADER] == b"corr-7" and headers[TRACEPARENT_HEADER]
    # The chunker fails on the same bytes again; its new dead letter carries the count.
    value, dlq_headers = await fail_in_chunker(redriven(first))
    second = consumed(value, dlq_headers, offset=1)
    assert second.redrives == 1
    assert second.original_headers[REDRIVE_OF_HEADER] == b"documents.dlq:0:0"
    assert dict(redrive_headers(second))[REDRIVES_HEADER] == b"2"
    assert second.correlation_id == "corr-7", "the trace goes on through redrives"


async def test_an_event_redriven_up_to_the_limit_is_refused() -> None:
    letter = await poison()
    for count in range(3):
        headers = dict(redrive_headers(letter))
        assert headers[REDRIVES_HEADER] == str(count + 1).encode()
        value, dlq_headers = await fail_in_chunker(redriven(letter))
        letter = consumed(value, dlq_headers, offset=count + 1)
    [step] = plan_redrive([letter], max_redrives=3)
    assert (step.action, step.why) == ("refuse", "redriven 3 times already (limit 3)")
    assert plan_redrive([letter], max_redrives=4)[0].action == "redrive"


async def test_a_dead_letter_is_redriven_once_per_run_and_once_ever() -> None:
    a, b = await poison(offset=0, source_offset=1), await poison(offset=1, source_offset=2)
    steps = plan_redrive([a, b], refs=[Ref(0), Ref(0, 0, "documents"), Ref(1)])
    assert [(s.letter.ref, s.action) for s in steps] == [
        ("documents:0:0", "redrive"),
        ("documents:0:1", "redrive"),
    ]
    ledger = {"documents:0:0": {"to": "documents:0:17", "at": "then"}}
    steps = plan_redrive([a, b], ledger=ledger)
    assert [s.action for s in steps] == ["skip", "redrive"]
    assert "already redriven to documents:0:17" in steps[0].why


async def test_one_event_dead_lettered_by_both_sinks_is_redriven_once() -> None:
    # Same original event (documents:0:5), dead-lettered twice: one redrive reaches both.
    a, b = await poison(offset=0, source_offset=5), await poison(offset=1, source_offset=5)
    steps = plan_redrive([a, b])
    assert [s.action for s in steps] == ["redrive", "skip"]
    assert "the same event as documents:0:0" in steps[1].why


async def test_references_that_name_nothing_or_several_dead_letters_are_errors() -> None:
    a = await poison(offset=3)
    b = await poison(offset=3, partition=1)
    with pytest.raises(LookupError, match="ambiguous"):
        plan_redrive([a, b], refs=[Ref(3)])
    assert plan_redrive([a, b], refs=[Ref(3, partition=1)])[0].letter is b
    with pytest.raises(LookupError, match="no dead letter"):
        plan_redrive([a, b], refs=[Ref(99)])


async def test_stage_and_reason_filters() -> None:
    letter = await poison()
    assert matches(letter, stage="chunker", reason_contains="TEXT IS EMPTY")
    assert not matches(letter, stage="embedder")
    assert not matches(letter, reason_contains="fingerprint")
    assert plan_redrive([letter], stage="qdrant-sink") == []


async def test_dead_letters_group_by_stage_and_reason_largest_first() -> None:
    empty = [await poison(offset=i) for i in range(3)]
    garbage_value, garbage_headers = await fail_in_chunker(
        FakeMessage(b"not avro", headers=HEADERS)
    )
    garbage = consumed(garbage_value, garbage_headers, offset=9)
    groups = group([empty[0], garbage, empty[1], empty[2]])
    assert [(g.stage, len(g.letters)) for g in groups] == [("chunker", 3), ("chunker", 1)]
    assert groups[1].reason.startswith("BadMarker")


def test_the_original_payload_is_decoded_or_previewed() -> None:
    shown = describe_payload(document(), CODECS.documents)
    assert shown["decoded"]["doc_id"] == "d1" and shown["schema"].endswith("DocumentEvent")
    embedded = {
        "chunk_id": "c", "doc_id": "d", "version": 1, "index": 0, "chunk_count": 1, "text": "t",
        "start": 0, "end": 1, "occurred_at": 1, "model": "m", "vector": [0.5] * 384,
    }  # fmt: skip
    short = describe_payload(codec_for("EmbeddedChunk").encode(embedded), CODECS.embedded)
    assert short["decoded"]["vector"][-1] == "… 384 values"
    raw = describe_payload(b"plain words", CODECS.documents)
    assert (
        raw["decoded"] is None
        and raw["utf8"] == "plain words"
        and raw["hex"] == b"plain words".hex()
    )
    binary = describe_payload(b"\xff\xfe\x00", CODECS.documents)
    assert binary["utf8"] is None and binary["hex"] == "fffe00"


async def test_the_report_logs_each_step_with_its_correlation_id(caplog: Any) -> None:
    a, b = await poison(offset=0, source_offset=1), await poison(offset=1, source_offset=2)
    c = await poison(offset=2, source_offset=3)
    steps = plan_redrive([a, b, c], ledger={"documents:0:2": {"to": "x", "at": "y"}})
    outcomes = [Outcome(steps[0], to="documents:0:40"), Outcome(steps[1], error="timed out")]
    with caplog.at_level(logging.INFO, logger="ops.dlq.letters"):
        result = report(steps, outcomes, dry_run=False)
    assert (result["redriven"], result["failed"], result["skipped"]) == (1, 1, 1)
    assert [r["action"] for r in result["steps"]] == ["redriven", "failed", "skipped"]
    assert {getattr(r, "correlation_id", None) for r in caplog.records} == {"corr-7"}
    dry = report(plan_redrive([a]), [], dry_run=True)
    assert dry["would_redrive"] == 1 and dry["redriven"] == 0


async def test_a_summary_names_where_a_redrive_went() -> None:
    letter = await poison(offset=0, source_offset=1)
    shown = summary(letter, {"documents:0:0": {"to": "documents:0:9"}})
    assert shown["origin"] == "documents:0:1" and shown["key"] == "doc"
    assert shown["redriven"] == {"to": "documents:0:9"}
    assert shown["failed_at"].startswith("20")


def test_the_cli_refuses_unclear_redrive_requests_before_reading_anything(capsys: Any) -> None:
    from ops.cli import main

    assert main(["dlq", "redrive"]) == 2, "neither --all nor references"
    assert main(["dlq", "redrive", "--all", "documents:0:1"]) == 2, "both"
    assert main(["dlq", "show", "nowhere:0:1"]) == 2
    assert "the source is one of documents, chunks, chunks.embedded" in capsys.readouterr().err
