"""Where a reader of a topic begins: `--from-offset` and `--from-time`, parsed
once for the command line and the admin API alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class StartAt:
    """Where a group that has read nothing yet begins: one offset for every
    partition, per-partition offsets, or the first event at or after a time."""

    offsets: dict[int, int] | None = None
    offset: int | None = None
    time: datetime | None = None

    def describe(self) -> str:
        if self.time is not None:
            return f"time {self.time.isoformat()}"
        if self.offsets is not None:
            return "offsets " + ",".join(f"{p}:{o}" for p, o in sorted(self.offsets.items()))
        return f"offset {self.offset}"


def parse_start(from_offset: str | None, from_time: str | None) -> StartAt | None:
    """`--from-offset 1200` (every partition) or `0:1200,1:1180`; `--from-time`
    as ISO 8601 (a time without a zone is UTC). Raises ValueError with the reason."""
    if from_offset and from_time:
        raise ValueError("give --from-offset or --from-time, not both")
    if from_time:
        try:
            moment = datetime.fromisoformat(from_time.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"--from-time {from_time!r} is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return StartAt(time=moment)
    if not from_offset:
        return None
    try:
        if ":" not in from_offset:
            return StartAt(offset=_non_negative(int(from_offset)))
        pairs = (item.split(":", 1) for item in from_offset.split(",") if item.strip())
        return StartAt(offsets={int(p): _non_negative(int(o)) for p, o in pairs})
    except ValueError:
        raise ValueError(
            f"--from-offset {from_offset!r}: give an offset (every partition) "
            "or partition:offset pairs such as 0:1200,1:1180"
        ) from None


def _non_negative(offset: int) -> int:
    if offset < 0:
        raise ValueError("negative offset")
    return offset
