"""Dead letters for operators: list, show, redrive and purge the `<topic>.dlq`
topics the stages write (streams/deadletter.py).

Reading never commits: a dead-letter topic is read by assignment, from each
partition's start to the end it had when the command began, so no consumer
group is created or moved.

Redrive sends a dead letter's original key, bytes and headers back to the
partition it was read from, with two headers more: `dlq_redrives` (how many
times this event has been redriven) and `dlq_redrive_of` (the dead letter it
comes from). A stage copies every header of a failed event into its dead
letter, so an event that fails again comes back with its count, and at the
limit it is refused. Each redrive is recorded in a ledger topic,
`<dlq topic>.redriven`, so a dead letter is redriven at most once however many
times `redrive --all` runs; an event that fails again is a new dead letter."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from core.kafka.records import Record
from core.logs import get_logger
from schemas.codec import AvroCodec, Codecs
from schemas.errors import CodecError

log = get_logger(__name__)

REDRIVES_HEADER = "dlq_redrives"
REDRIVE_OF_HEADER = "dlq_redrive_of"
DEFAULT_MAX_REDRIVES = 3
SOURCES = ("documents", "chunks", "chunks.embedded")
STAGE_SOURCE = {
    "chunker": "documents",
    "embedder": "chunks",
    "qdrant-sink": "chunks.embedded",
    "neo4j-sink": "chunks.embedded",
}


@dataclass(frozen=True)
class Ref:
    """`OFFSET`, `PARTITION:OFFSET` or `SOURCE:PARTITION:OFFSET` (SOURCE: documents,
    chunks or chunks.embedded, the topic the event was read from)."""

    offset: int
    partition: int | None = None
    source: str | None = None


def parse_ref(text: str) -> Ref:
    parts = text.strip().rsplit(":", 2)
    try:
        numbers = [int(p) for p in parts[-2:]] if len(parts) > 1 else [int(parts[0])]
    except ValueError:
        raise ValueError(
            f"{text!r}: expected OFFSET, PARTITION:OFFSET or SOURCE:P:OFFSET"
        ) from None
    if any(n < 0 for n in numbers):
        raise ValueError(f"{text!r}: partitions and offsets are never negative")
    source = parts[0].removesuffix(".dlq") if len(parts) == 3 else None
    if source is not None and source not in SOURCES:
        raise ValueError(f"{text!r}: the source is one of {', '.join(SOURCES)}")
    return Ref(
        offset=numbers[-1], partition=numbers[0] if len(numbers) == 2 else None, source=source
    )


@dataclass(frozen=True)
class DeadLetter:
    source: str  # the short name of the topic the failed event came from
    dlq_topic: str
    partition: int
    offset: int
    record: dict[str, Any] | None  # the decoded DeadLetter; None when unreadable
    headers: dict[str, bytes] = field(default_factory=dict)  # the dead letter's own
    error: str = ""  # why `record` could not be decoded

    @property
    def ref(self) -> str:
        return f"{self.source}:{self.partition}:{self.offset}"

    @property
    def address(self) -> str:
        """Where it lies, whatever the topic prefix: the `dlq_redrive_of` value."""
        return f"{self.dlq_topic}:{self.partition}:{self.offset}"

    @property
    def stage(self) -> str:
        if self.record is not None:
            return str(self.record["stage"])
        return self.headers.get("dlq_stage", b"?").decode("utf-8", "replace")

    @property
    def reason(self) -> str:
        if self.record is None:
            return f"unreadable dead letter: {self.error}"
        return f"{self.record['error_class']}: {self.record['error_message']}"

    @property
    def original_headers(self) -> dict[str, bytes]:
        return dict(self.record["headers"]) if self.record else {}

    @property
    def redrives(self) -> int:
        try:
            return int(self.original_headers.get(REDRIVES_HEADER, b"0").decode())
        except (UnicodeDecodeError, ValueError):
            return 0

    @property
    def correlation_id(self) -> str:
        return str(self.record.get("correlation_id", "")) if self.record else ""

    @property
    def origin(self) -> tuple[str, int, int] | None:
        """(topic, partition, offset) of the event that failed."""
        if self.record is None:
            return None
        return (self.record["topic"], int(self.record["partition"]), int(self.record["offset"]))


def dead_letter(source: str, dlq_topic: str, record: Record, codec: AvroCodec) -> DeadLetter:
    headers = {
        k: v.encode() if isinstance(v, str) else v for k, v in record.headers if v is not None
    }
    letter = DeadLetter(source, dlq_topic, record.partition, record.offset, None, headers)
    try:
        return replace(letter, record=codec.decode(record.value))
    except CodecError as exc:
        return replace(letter, error=str(exc))


def matches(
    letter: DeadLetter, stage: str | None = None, reason_contains: str | None = None
) -> bool:
    if stage and letter.stage != stage:
        return False
    return not reason_contains or reason_contains.lower() in letter.reason.lower()


@dataclass
class Group:
    stage: str
    reason: str
    letters: list[DeadLetter] = field(default_factory=list)


def group(letters: Iterable[DeadLetter]) -> list[Group]:
    """By stage and reason, the largest group first."""
    groups: dict[tuple[str, str], Group] = {}
    for letter in letters:
        key = (letter.stage, letter.reason[:200])
        groups.setdefault(key, Group(*key)).letters.append(letter)
    return sorted(groups.values(), key=lambda g: (-len(g.letters), g.stage, g.reason))


def resolve(letters: Sequence[DeadLetter], ref: Ref) -> DeadLetter:
    found = [
        letter
        for letter in letters
        if letter.offset == ref.offset
        and ref.partition in (None, letter.partition)
        and ref.source in (None, letter.source)
    ]
    if len(found) > 1:
        refs = ", ".join(letter.ref for letter in found)
        raise LookupError(f"offset {ref.offset} is ambiguous: give one of {refs}")
    if not found:
        raise LookupError(f"no dead letter at {_describe(ref)}")
    return found[0]


def _describe(ref: Ref) -> str:
    partition = "any partition" if ref.partition is None else f"partition {ref.partition}"
    return f"offset {ref.offset} of {partition} of {ref.source or 'any dead-letter topic'}"


@dataclass(frozen=True)
class Step:
    letter: DeadLetter
    action: str  # redrive | refuse | skip
    why: str = ""


def plan_redrive(
    letters: Sequence[DeadLetter],
    *,
    refs: Sequence[Ref] = (),
    stage: str | None = None,
    ledger: Mapping[str, Mapping[str, Any]] | None = None,
    max_redrives: int = DEFAULT_MAX_REDRIVES,
) -> list[Step]:
    """What a redrive run does with each selected dead letter (`refs`, else all).
    Raises LookupError for a ref that names no dead letter or several."""
    selected = [resolve(letters, ref) for ref in refs] if refs else list(letters)
    ledger = ledger or {}
    steps: list[Step] = []
    seen: set[str] = set()
    origins: dict[tuple[str, int, int], str] = {}
    for letter in selected:
        if letter.ref in seen or not matches(letter, stage):
            continue
        seen.add(letter.ref)
        steps.append(_step(letter, ledger, origins, max_redrives))
    return steps


def _step(
    letter: DeadLetter,
    ledger: Mapping[str, Mapping[str, Any]],
    origins: dict[tuple[str, int, int], str],
    max_redrives: int,
) -> Step:
    if letter.record is None or letter.origin is None:
        return Step(letter, "skip", letter.reason)
    if letter.record.get("value") is None:
        return Step(letter, "skip", "the dead letter has no original bytes")
    if letter.ref in ledger:
        done = ledger[letter.ref]
        return Step(letter, "skip", f"already redriven to {done.get('to')} at {done.get('at')}")
    if letter.origin in origins:
        # Two sinks read chunks.embedded: one redrive reaches both of them.
        return Step(letter, "skip", f"the same event as {origins[letter.origin]}, redriven once")
    if letter.redrives >= max_redrives:
        why = f"redriven {letter.redrives} times already (limit {max_redrives})"
        return Step(letter, "refuse", why)
    origins[letter.origin] = letter.ref
    return Step(letter, "redrive")


def redrive_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    """The original headers (correlation id, traceparent, schema…), the count raised."""
    headers = {
        k: v
        for k, v in letter.original_headers.items()
        if k not in (REDRIVES_HEADER, REDRIVE_OF_HEADER)
    }
    headers[REDRIVES_HEADER] = str(letter.redrives + 1).encode()
    headers[REDRIVE_OF_HEADER] = letter.address.encode()
    return list(headers.items())


def ledger_topic(dlq_topic: str) -> str:
    return f"{dlq_topic}.redriven"


def payload_codec(codecs: Codecs, source: str) -> AvroCodec:
    return {"documents": codecs.documents, "chunks": codecs.chunks}.get(source, codecs.embedded)


def describe_payload(value: bytes | None, codec: AvroCodec) -> dict[str, Any]:
    """The original event decoded with our codecs, else previews of its bytes."""
    data = value or b""
    try:
        record = codec.decode(data)
    except CodecError as exc:
        try:
            text: str | None = data[:500].decode("utf-8")
        except UnicodeDecodeError:
            text = None
        return {
            "decoded": None,
            "error": str(exc),
            "size": len(data),
            "utf8": text,
            "hex": data[:64].hex(),
        }
    vector = record.get("vector")
    if isinstance(vector, list) and len(vector) > 6:
        record["vector"] = [*vector[:4], f"… {len(vector)} values"]
    return {"decoded": record, "schema": codec.schema.name, "size": len(data)}


@dataclass
class Outcome:
    step: Step
    to: str = ""  # topic:partition:offset of the redriven event
    error: str = ""


def _text(value: bytes | None) -> str:
    if value is None:
        return ""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return f"0x{value.hex()}"


def summary(letter: DeadLetter, ledger: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One dead letter as JSON (`dlq list --json`)."""
    failed_at = letter.record.get("failed_at") if letter.record else None
    origin = letter.origin
    return {
        "ref": letter.ref,
        "dlq_topic": letter.dlq_topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "stage": letter.stage,
        "reason": letter.reason,
        "failed_at": failed_at.isoformat() if isinstance(failed_at, datetime) else None,
        "origin": ":".join(map(str, origin)) if origin else None,
        "key": _text(letter.record.get("key")) if letter.record else None,
        "correlation_id": letter.correlation_id,
        "redrives": letter.redrives,
        "redriven": dict(ledger[letter.ref]) if letter.ref in ledger else None,
    }


def details(
    letter: DeadLetter, codecs: Codecs, ledger: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Everything about one dead letter (`dlq show`)."""
    record = letter.record or {}
    return {
        **summary(letter, ledger),
        "error_class": record.get("error_class"),
        "error_message": record.get("error_message"),
        "headers": {k: _text(v) for k, v in letter.original_headers.items()},
        "dlq_headers": {k: _text(v) for k, v in letter.headers.items()},
        "payload": describe_payload(record.get("value"), payload_codec(codecs, letter.source))
        if letter.record
        else None,
    }


def render_list(groups: Sequence[Group], ledger: Mapping[str, Mapping[str, Any]]) -> str:
    lines = []
    for g in groups:
        lines.append(f"{g.stage} ({len(g.letters)}): {g.reason}")
        for letter in g.letters:
            s = summary(letter, ledger)
            done = f"  redriven -> {s['redriven']['to']}" if s["redriven"] else ""
            lines.append(
                f"  {s['ref']:<28} {s['failed_at'] or '?':<32} key={s['key']} "
                f"correlation_id={s['correlation_id'] or '-'} redrives={s['redrives']}{done}"
            )
    return "\n".join(lines) or "no dead letters"


def render_details(shown: Mapping[str, Any]) -> str:
    lines = [f"{k}: {shown[k]}" for k in shown if k not in ("headers", "dlq_headers", "payload")]
    for name in ("headers", "dlq_headers"):
        lines.append(f"{name}:")
        lines += [f"  {k}: {v}" for k, v in shown[name].items()]
    lines.append("payload:")
    lines.append(json.dumps(shown["payload"], indent=2, default=str))
    return "\n".join(lines)


DONE = {"redrive": "would_redrive", "refuse": "refused", "skip": "skipped"}


def report(steps: Sequence[Step], outcomes: Sequence[Outcome], dry_run: bool) -> dict[str, Any]:
    """Log each step (a JSON line with the event's correlation id) and sum them up:
    redriven, would_redrive (dry run), refused, skipped or failed."""
    sent = {o.step.letter.ref: o for o in outcomes}
    rows = []
    for step in steps:
        letter, outcome = step.letter, sent.get(step.letter.ref)
        action = DONE[step.action]
        if outcome is not None:
            action = "redriven" if outcome.to else "failed"
        elif step.action == "redrive" and not dry_run:
            action = "failed"  # planned, never handed to Kafka
        row: dict[str, Any] = {
            "ref": letter.ref,
            "stage": letter.stage,
            "action": action,
            "redrives": letter.redrives,
            "correlation_id": letter.correlation_id,
            "why": outcome.error if outcome and outcome.error else step.why,
            "to": outcome.to if outcome else "",
        }
        rows.append(row)
        level = logging.WARNING if action in ("refused", "failed") else logging.INFO
        log.log(level, f"dead letter {action}", extra={k: v for k, v in row.items() if v != ""})
    totals = {
        a: sum(r["action"] == a for r in rows) for a in (*DONE.values(), "redriven", "failed")
    }
    return {"dry_run": dry_run, **totals, "steps": rows}
