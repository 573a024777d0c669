"""--from-offset and --from-time, as the command line and the admin API read them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.positions import StartAt, parse_start


def test_nothing_given_means_no_start_point() -> None:
    assert parse_start(None, None) is None
    assert parse_start("", "") is None


def test_one_offset_for_every_partition_or_one_per_partition() -> None:
    assert parse_start("1200", None) == StartAt(offset=1200)
    assert parse_start("0:1200,1:1180", None) == StartAt(offsets={0: 1200, 1: 1180})
    assert parse_start("0:5", None).describe() == "offsets 0:5"  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", ["-1", "ten", "0:x", "0:-4", "0-5"])
def test_a_bad_offset_says_how_to_write_one(bad: str) -> None:
    with pytest.raises(ValueError, match="--from-offset"):
        parse_start(bad, None)


def test_a_time_keeps_its_zone_and_one_without_is_utc() -> None:
    zoned = parse_start(None, "2026-11-22T10:00:00+02:00")
    assert zoned is not None and zoned.time is not None
    assert zoned.time.utcoffset() == timedelta(hours=2)
    bare = parse_start(None, "2026-11-22T10:00:00")
    assert bare == StartAt(time=datetime(2026, 11, 22, 10, tzinfo=UTC))
    z = parse_start(None, "2026-11-22T08:00:00Z")
    assert z is not None and z.time == datetime(
        2026, 11, 22, 10, tzinfo=timezone(timedelta(hours=2))
    )


def test_a_bad_time_or_both_at_once_are_refused() -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_start(None, "last tuesday")
    with pytest.raises(ValueError, match="not both"):
        parse_start("5", "2026-11-22")
